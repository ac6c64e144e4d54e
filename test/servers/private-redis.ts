/**
 * A redis-server of a test's own on a fixed loopback port, so a fault can flush, stop or restart it
 * without touching the shared server on 6379. It keeps nothing on disk (`--save ''`, no AOF): a
 * restart comes back empty, the worst case of a Redis restart (the same as a failover to a replica
 * that had not caught up).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';

export interface PrivateRedis {
  readonly url: string;
  /** Stops the server (SIGTERM; with nothing to save it exits at once). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server if it runs. */
  destroy(): Promise<void>;
}

const portAnswers = (port: number): Promise<boolean> => new Promise((resolve) => {
  const socket = net.connect(port, '127.0.0.1');
  socket.once('connect', () => { socket.destroy(); resolve(true); });
  socket.once('error', () => resolve(false));
});

/**
 * A redis-server already on `port` (in the run's own range) is one an earlier run left behind when
 * it was killed: it is shut down, so a killed run does not fail every later one.
 */
async function shutdownLeftover(port: number): Promise<void> {
  const leftover = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  await leftover.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
  leftover.disconnect();
  const deadline = Date.now() + 10_000;
  while (await portAnswers(port)) {
    if (Date.now() > deadline) throw new Error(`port ${port} still answers after SHUTDOWN; something else listens there`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts redis-server on 127.0.0.1:`port`. */
export async function startPrivateRedis(port: number): Promise<PrivateRedis> {
  let child: ChildProcess | undefined;
  let output = '';
  const start = async (): Promise<void> => {
    if (await portAnswers(port)) await shutdownLeftover(port);
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-4000); });
    child.stderr!.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-4000); });
    const deadline = Date.now() + 20_000;
    while (!(await portAnswers(port))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server on ${port} did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, start, stop, destroy: stop };
}
