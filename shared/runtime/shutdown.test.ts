import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../db/pool.ts';
import { REDIS_URL, uniquePrefix } from '../../test/helpers/redis.ts';
import { TEST_POSTGRES_URL } from '../../test/servers/ports.ts';
import { createProducer, type Producer } from './producer.ts';
import { runWorker, type RunningWorker } from './run-worker.ts';
import { captureLogger, sleep, testConfig, testQueue, waitFor } from './test-support/index.ts';
import { defineWorker, type JobHandler } from './worker.ts';

const CHILD = fileURLToPath(new URL('./test-support/child-worker.ts', import.meta.url));
const queue = testQueue('testqueue');
const childQueue = testQueue('childqueue');
type Payload = ReturnType<typeof queue.parse>;

let pool: Pool;
let prefix: string;
let producer: Producer;
let cleanups: (() => Promise<unknown>)[];

beforeAll(() => { pool = createPool({ connectionString: TEST_POSTGRES_URL, max: 1 }); });
afterAll(async () => { await pool.end(); });
beforeEach(() => {
  prefix = uniquePrefix('shutdown');
  producer = createProducer({ url: REDIS_URL, prefix });
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups) await cleanup();
  for (const name of [queue.name, childQueue.name]) await producer.queue(name).obliterate({ force: true });
  await producer.close();
});

async function start(handler: JobHandler<Payload>, concurrency = 3): Promise<RunningWorker> {
  const worker = await runWorker(defineWorker({ name: 'testworker', queue, concurrency, handler }), {
    // Production leases (30 s): a job must come back by hand-back, not by its lease running out.
    config: testConfig(), services: { db: pool }, redis: { url: REDIS_URL, prefix }, log: captureLogger().log,
  });
  if (worker.disabled) throw new Error('unexpectedly disabled');
  cleanups.push(() => worker.stop(1000));
  return worker;
}

function spawnChild(mode: string): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, QF_MODE: mode, QF_PREFIX: prefix, QF_REDIS_URL: REDIS_URL, QF_DATABASE_URL: TEST_POSTGRES_URL },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  cleanups.push(async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exited; });
  return { child, output: () => output, exited };
}

async function jobState(name: string, jobId: string) {
  const job = await producer.queue(name).getJob(jobId);
  return { state: await job?.getState(), attemptsMade: job?.attemptsMade };
}

describe('graceful stop', () => {
  it('lets quick jobs finish and hands back, within the deadline, both a job that honours its signal and one that does not', async () => {
    const ignoring = new Promise<void>((resolve) => setTimeout(resolve, 8000));
    const worker = await start(async (payload, ctx) => {
      if (payload.n === 1) return sleep(200);
      if (payload.n === 2) return new Promise<void>((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      return ignoring;
    });
    for (const n of [1, 2, 3]) await producer.enqueue(queue, { v: 1, n });
    await waitFor(async () => (await producer.queue(queue.name).getActiveCount()) === 3);

    const begun = Date.now();
    await worker.stop(1500, { abortGraceMs: 500 });
    expect(Date.now() - begun).toBeLessThan(1500 + 1000); // the deadline, plus slack for a loaded machine

    expect(await jobState(queue.name, 'testqueue/1')).toEqual({ state: 'completed', attemptsMade: 1 });
    for (const id of ['testqueue/2', 'testqueue/3']) {
      expect(['delayed', 'waiting']).toContain((await jobState(queue.name, id)).state);
      expect((await jobState(queue.name, id)).attemptsMade).toBe(0);
    }
    // Another worker takes the handed-back jobs at once (no lease to wait out).
    const seen: number[] = [];
    await start(async (payload) => { seen.push(payload.n); });
    await waitFor(() => seen.length === 2, 2000);
    expect(seen.sort()).toEqual([2, 3]);
  });

  it('is repeat-safe', async () => {
    const worker = await start(async () => undefined);
    await Promise.all([worker.stop(500), worker.stop(500)]);
    await worker.stop(500);
  });
});

describe('worker processes', () => {
  it('redelivers the job of a worker killed with SIGKILL mid-job to another worker', async () => {
    const { child, output } = spawnChild('work');
    await producer.enqueue(childQueue, { v: 1, n: 1 });
    await waitFor(() => output().includes('started childqueue/1'), 20_000);
    child.kill('SIGKILL');

    const seen: string[] = [];
    const worker = await runWorker(defineWorker({
      name: 'rescuer', queue: childQueue, concurrency: 1, handler: async (_p, ctx) => { seen.push(ctx.job.id); },
    }), { config: testConfig(), services: { db: pool }, redis: { url: REDIS_URL, prefix }, log: captureLogger().log,
      lease: { lockDurationMs: 1000, stalledIntervalMs: 500 } });
    if (worker.disabled) throw new Error('unexpectedly disabled');
    cleanups.push(() => worker.stop(1000));
    await waitFor(async () => (await jobState(childQueue.name, 'childqueue/1')).state === 'completed', 15_000);
    expect(seen).toEqual(['childqueue/1']);
    expect((await jobState(childQueue.name, 'childqueue/1')).attemptsMade).toBe(1);
  });

  it('hands its job back and exits 0 on SIGTERM', async () => {
    const { child, output, exited } = spawnChild('graceful');
    await producer.enqueue(childQueue, { v: 1, n: 2 });
    await waitFor(() => output().includes('started childqueue/2'), 20_000);
    const begun = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - begun).toBeLessThan(3000 + 3000); // stop deadline 3 s, plus process exit on a loaded machine
    expect(output()).toMatch(/handed back/);
    const state = await jobState(childQueue.name, 'childqueue/2');
    expect(['delayed', 'waiting']).toContain(state.state);
    expect(state.attemptsMade).toBe(0);
  });

  it('exits 0 when its feature gate is off, after logging why', async () => {
    const { output, exited } = spawnChild('disabled');
    expect(await exited).toBe(0);
    expect(output()).toMatch(/"reason":"FEATURE_TEST is off"/);
    expect(output()).toMatch(/worker disabled/);
  });
});
