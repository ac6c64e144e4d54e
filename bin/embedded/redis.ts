/**
 * The Redis of `npm start` when no REDIS_URL (or BUILDLOGS_REDIS) is given: a `redis-server`
 * started on a fixed loopback port with its append-only file under `<dataDir>/redis`, so queued
 * work survives a restart. Reused when already running.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../../shared/runtime/logger.ts';
import type { EmbeddedServer } from './postgres.ts';

const PORT = Number(process.env.QUAYFLEET_EMBEDDED_REDIS_PORT ?? 16380);

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
    socket.setTimeout(1000, () => { socket.destroy(); resolve(false); });
  });
}

/** Thrown when no Redis is configured and none can be started. */
export class RedisUnavailableError extends Error {
  constructor() {
    super('quayfleet needs Redis: set REDIS_URL=redis://host:6379 (or BUILDLOGS_REDIS in config.yaml), or install redis-server (apt-get install redis-server) for the embedded default');
    this.name = 'RedisUnavailableError';
  }
}

/** Where the embedded Redis listens, for messages. */
export const EMBEDDED_REDIS_ADDRESS = `127.0.0.1:${PORT}`;
const url = `redis://127.0.0.1:${PORT}`;

/** The URL of the embedded Redis a running `quayfleet all` started, or undefined (never starts one). */
export async function runningEmbeddedRedis(): Promise<string | undefined> {
  return (await portAnswers(PORT)) ? url : undefined;
}

/** Starts (or reuses) the embedded redis-server. */
export async function startEmbeddedRedis(dataDir: string, log: Logger): Promise<EmbeddedServer> {
  if (await portAnswers(PORT)) {
    log.info({ port: PORT }, 'reusing the embedded Redis already running');
    return { url, stop: async () => undefined };
  }
  if (spawnSync('redis-server', ['--version']).error) throw new RedisUnavailableError();
  const dir = path.resolve(dataDir, 'redis');
  fs.mkdirSync(dir, { recursive: true });
  const child: ChildProcess = spawn('redis-server', [
    '--bind', '127.0.0.1', '--port', String(PORT), '--dir', dir, '--appendonly', 'yes', '--save', '',
    // BullMQ needs noeviction: an evicted job key is lost work.
    '--maxmemory-policy', 'noeviction',
  ], { stdio: 'ignore', detached: false });
  // However this process ends (an uncaught error, process.exit), its redis-server goes with it;
  // the orderly path below stops it first and waits.
  const killOnExit = (): void => { child.kill('SIGTERM'); };
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  for (let i = 0; i < 100 && !(await portAnswers(PORT)); i++) await new Promise((r) => setTimeout(r, 50));
  if (!(await portAnswers(PORT))) throw new Error(`embedded redis-server did not start on 127.0.0.1:${PORT}`);
  log.info({ port: PORT, dir }, 'embedded Redis started');
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
