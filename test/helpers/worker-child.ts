/**
 * Starts one worker in a child process (worker-child-main.ts) for tests that SIGKILL a worker
 * mid-job; resolves once it consumes its queue.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./worker-child-main.ts', import.meta.url));

/** Where the child connects and what it runs. */
export interface WorkerChildOptions {
  /** The worker's folder under workers/ (its index.ts default-exports the definition). */
  readonly worker: string;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  /** The BullMQ key prefix of the test's queues. */
  readonly prefix: string;
  /** config.yaml keys. */
  readonly config?: Record<string, unknown>;
  /** The job lease (a killed child's job is taken over after it). Default 1000 ms. */
  readonly leaseMs?: number;
  /** Extra node flags, e.g. `--max-old-space-size=64` to prove a worker's memory is bounded. */
  readonly nodeFlags?: readonly string[];
}

/** Spawns the worker and waits for its `ready` line; rejects if it exits first. */
export async function spawnWorkerChild(options: WorkerChildOptions): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), '--import', 'tsx', MAIN], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env, QF_WORKER: options.worker, QF_DATABASE_URL: options.databaseUrl, QF_REDIS_URL: options.redisUrl,
      QF_PREFIX: options.prefix, QF_CONFIG: JSON.stringify(options.config ?? {}), QF_LEASE_MS: String(options.leaseMs ?? 1000),
    },
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => { if (chunk.toString().includes('ready')) resolve(); });
      child.once('exit', (code, signal) => reject(new Error(`worker child ${options.worker} exited (${code ?? signal}) before it was ready`)));
    });
  } catch (error) {
    if (child.exitCode === null) child.kill('SIGKILL');
    throw error;
  }
  return child;
}

/** SIGKILLs the child (if still running) and waits for it to exit. */
export async function killWorkerChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}
