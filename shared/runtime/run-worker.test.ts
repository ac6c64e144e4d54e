import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../db/pool.ts';
import { InvalidPayloadError } from '../../queues/contract.ts';
import { REDIS_URL, uniquePrefix } from '../../test/helpers/redis.ts';
import { TEST_POSTGRES_URL } from '../../test/servers/ports.ts';
import { registry } from '../metrics/index.ts';
import { DeferError, PermanentFailureError, RateLimitedError } from './outcomes.ts';
import { createProducer, type Producer } from './producer.ts';
import { listDeadLetters } from './queue-status.ts';
import { runWorker, type RunningWorker } from './run-worker.ts';
import { captureLogger, sleep, testConfig, testQueue, waitFor } from './test-support/index.ts';
import { defineWorker, type JobContext, type JobHandler, type WorkerServices } from './worker.ts';

const queue = testQueue('testqueue');
const followUp = testQueue('followup');
type Payload = ReturnType<typeof queue.parse>;

let pool: Pool;
let prefix: string;
let producer: Producer;
let running: RunningWorker[];

beforeAll(() => {
  pool = createPool({ connectionString: TEST_POSTGRES_URL, max: 1 });
});
afterAll(async () => {
  await pool.end();
});
beforeEach(() => {
  prefix = uniquePrefix('runworker');
  producer = createProducer({ url: REDIS_URL, prefix });
  running = [];
});
afterEach(async () => {
  await Promise.all(running.map((worker) => worker.stop(2000)));
  for (const name of [queue.name, followUp.name]) await producer.queue(name).obliterate({ force: true });
  await producer.close();
});

interface StartOptions {
  concurrency?: number;
  log?: ReturnType<typeof captureLogger>['log'];
  /** Seconds between ticks, or a cron pattern. */
  schedule?: number | string;
  pausesOnRateLimit?: boolean;
}

async function start<K = unknown>(handler: JobHandler<Payload, WorkerServices, K>, options: StartOptions = {}) {
  const definition = defineWorker({
    name: 'testworker',
    queue,
    concurrency: options.concurrency ?? 1,
    pausesOnRateLimit: options.pausesOnRateLimit,
    ...(typeof options.schedule === 'number' ? { schedule: [{ id: 'tick', everySeconds: options.schedule, payload: { v: 1 as const, n: 0 } }] } : {}),
    ...(typeof options.schedule === 'string' ? { schedule: [{ id: 'cron', cron: options.schedule, payload: { v: 1 as const, n: 0 } }] } : {}),
    handler,
  });
  const worker = await runWorker(definition, {
    config: testConfig(), services: { db: pool }, redis: { url: REDIS_URL, prefix }, log: options.log ?? captureLogger().log,
  });
  if (worker.disabled) throw new Error('unexpectedly disabled');
  running.push(worker);
  return worker;
}

async function stateOf(jobId: string) {
  const job = await producer.queue(queue.name).getJob(jobId);
  return { state: await job?.getState(), attemptsMade: job?.attemptsMade, data: job?.data };
}

async function outcomeCount(outcome: string): Promise<number> {
  const values = (await registry.getSingleMetric('quayfleet_worker_jobs_total')!.get()).values;
  return values.find((v) => v.labels.queue_name === queue.name && v.labels.outcome === outcome)?.value ?? 0;
}

describe('runWorker', () => {
  it('runs a job to done with services, job info and a logger bound to worker, job and repository', async () => {
    const { log, lines } = captureLogger();
    const seen: { db: unknown; job: unknown; payload: Payload }[] = [];
    const doneBefore = await outcomeCount('done');
    await start(async (payload, ctx) => {
      seen.push({ db: ctx.db, job: ctx.job, payload });
      ctx.log.info('collecting');
    }, { log });
    expect(await producer.enqueue(queue, { v: 1, n: 1, repositoryId: 7 })).toBe('testqueue/1');
    await waitFor(async () => (await stateOf('testqueue/1')).state === 'completed');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.db).toBe(pool);
    expect(seen[0]!.payload).toEqual({ v: 1, n: 1, repositoryId: 7 });
    expect(seen[0]!.job).toMatchObject({ id: 'testqueue/1', queueName: 'testqueue', attempt: 1, attemptsMade: 0, maxAttempts: 3 });
    expect(lines.find((l) => l.msg === 'collecting')).toMatchObject({ worker: 'testworker', jobId: 'testqueue/1', attempt: 1, repositoryId: 7 });
    expect(await outcomeCount('done')).toBe(doneBefore + 1);
  });

  it('runs onStart once before taking jobs, with services, enqueue and schedule removal; a failing one is logged and the worker starts', async () => {
    const order: string[] = [];
    await producer.queue(queue.name).upsertJobScheduler('retired', { every: 300_000 }, { name: 'retired', data: { v: 1, n: 0 } });
    const definition = defineWorker({
      name: 'testworker', queue, concurrency: 1,
      async onStart(ctx) {
        order.push(`start:${ctx.db === pool}:${await ctx.removeSchedule('retired')}`);
        await ctx.enqueue(queue, { v: 1, n: 7 });
      },
      handler: async (payload) => { order.push(`job:${payload.n}`); },
    });
    const worker = await runWorker(definition, { config: testConfig(), services: { db: pool }, redis: { url: REDIS_URL, prefix }, log: captureLogger().log });
    if (worker.disabled) throw new Error('unexpectedly disabled');
    running.push(worker);
    await waitFor(() => order.includes('job:7'));
    // The retired scheduler's first tick was queued when it was created; the start step ran before any job.
    expect(order[0]).toBe('start:true:true');
    expect(await producer.queue(queue.name).getJobSchedulers()).toEqual([]);

    const { log, lines } = captureLogger();
    const failing = defineWorker({ name: 'testworker', queue, concurrency: 1, onStart: async () => { throw new Error('reconcile failed'); }, handler: async () => undefined });
    const started = await runWorker(failing, { config: testConfig(), services: { db: pool }, redis: { url: REDIS_URL, prefix }, log });
    if (started.disabled) throw new Error('unexpectedly disabled');
    running.push(started);
    expect(lines.find((l) => l.msg === 'worker start step failed; starting anyway')).toMatchObject({ err: { message: 'reconcile failed' } });
  });

  it('rejects a bad payload at enqueue and dead-letters one that reaches a worker', async () => {
    const calls: number[] = [];
    await start(async (payload) => { calls.push(payload.n); });
    await expect(producer.enqueue(queue, { v: 1, n: -1 })).rejects.toThrow(InvalidPayloadError);
    await producer.queue(queue.name).add('raw', { v: 2, n: 'x' }, { jobId: 'testqueue/bad', attempts: 3 });
    await waitFor(async () => (await stateOf('testqueue/bad')).state === 'failed');
    expect(calls).toEqual([]);
    const [letter] = await listDeadLetters(producer, queue.name);
    expect(letter).toMatchObject({ jobId: 'testqueue/bad', permanent: true, attemptsMade: 1 });
    expect(letter!.reason).toMatch(/invalid testqueue payload/);
  });

  it('dead-letters a permanent failure with its reason and does not retry it', async () => {
    let calls = 0;
    await start(async () => { calls++; throw new PermanentFailureError('repository is gone'); });
    await producer.enqueue(queue, { v: 1, n: 2 });
    await waitFor(async () => (await stateOf('testqueue/2')).state === 'failed');
    await sleep(500); // a retry would have run by now (backoff 200 ms)
    expect(calls).toBe(1);
    expect(await listDeadLetters(producer, queue.name)).toMatchObject([
      { jobId: 'testqueue/2', reason: 'repository is gone', permanent: true, attemptsMade: 1, payload: { v: 1, n: 2 } },
    ]);
  });

  it('defers without spending an attempt', async () => {
    const runs: { attemptsMade: number; at: number }[] = [];
    await start(async (_payload, ctx) => {
      runs.push({ attemptsMade: ctx.job.attemptsMade, at: Date.now() });
      if (runs.length < 3) throw new DeferError(150, 'repository lock busy');
    });
    await producer.enqueue(queue, { v: 1, n: 3 });
    await waitFor(async () => (await stateOf('testqueue/3')).state === 'completed');
    expect(runs.map((r) => r.attemptsMade)).toEqual([0, 0, 0]);
    expect(runs[1]!.at - runs[0]!.at).toBeGreaterThanOrEqual(140);
    expect(runs[2]!.at - runs[1]!.at).toBeGreaterThanOrEqual(140);
  });

  it('runs a job that met an unreachable Postgres again, more times than its attempts, without spending one', { timeout: 30_000 }, async () => {
    const unreachable = createPool({ connectionString: 'postgres://postgres@127.0.0.1:1/none', max: 1 });
    const runs: number[] = [];
    await start(async (_payload, ctx) => {
      runs.push(ctx.job.attemptsMade);
      // A terminated backend, then a refused connection twice (3 runs = the contract's attempts).
      if (runs.length === 1) await ctx.db.query('SELECT pg_terminate_backend(pg_backend_pid())');
      if (runs.length <= 3) await unreachable.query('SELECT 1');
    });
    try {
      await producer.enqueue(queue, { v: 1, n: 31 });
      await waitFor(async () => (await stateOf('testqueue/31')).state === 'completed', 20_000);
      expect(runs).toEqual([0, 0, 0, 0]);
    } finally {
      await unreachable.end();
    }
  });

  it("retries with the contract's exponential backoff, then dead-letters after the last attempt", async () => {
    const runs: number[] = [];
    await start(async () => { runs.push(Date.now()); throw new Error('upstream unavailable'); });
    await producer.enqueue(queue, { v: 1, n: 4 });
    await waitFor(async () => (await stateOf('testqueue/4')).state === 'failed');
    expect(runs).toHaveLength(3);
    expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(195); // 200 ms * 2^0
    expect(runs[2]! - runs[1]!).toBeGreaterThanOrEqual(395); // 200 ms * 2^1
    expect(await listDeadLetters(producer, queue.name)).toMatchObject([
      { jobId: 'testqueue/4', reason: 'upstream unavailable', permanent: false, attemptsMade: 3 },
    ]);
  });

  it('pauses the whole queue for the time a rate limit asks, without spending an attempt', async () => {
    const starts: { n: number; at: number; attemptsMade: number }[] = [];
    let limited = false;
    await start(async (payload, ctx) => {
      starts.push({ n: payload.n, at: Date.now(), attemptsMade: ctx.job.attemptsMade });
      if (!limited) { limited = true; throw new RateLimitedError(700, 'HTTP 429'); }
    }, { pausesOnRateLimit: true });
    await producer.enqueue(queue, { v: 1, n: 5 });
    await producer.enqueue(queue, { v: 1, n: 6 });
    await waitFor(async () => (await stateOf('testqueue/5')).state === 'completed' && (await stateOf('testqueue/6')).state === 'completed');
    expect(starts).toHaveLength(3);
    expect(starts[1]!.at - starts[0]!.at).toBeGreaterThanOrEqual(650);
    expect(starts.every((s) => s.attemptsMade === 0)).toBe(true);
  });

  it('defers only the job when the worker does not pause its queue on rate limits', async () => {
    const starts: { n: number; at: number; attemptsMade: number }[] = [];
    await start(async (payload, ctx) => {
      starts.push({ n: payload.n, at: Date.now(), attemptsMade: ctx.job.attemptsMade });
      if (payload.n === 9 && starts.length === 1) throw new RateLimitedError(500, 'HTTP 429');
    });
    await producer.enqueue(queue, { v: 1, n: 9 });
    await waitFor(async () => (await stateOf('testqueue/9')).state === 'delayed');
    await producer.enqueue(queue, { v: 1, n: 10 });
    await waitFor(async () => (await stateOf('testqueue/9')).state === 'completed' && (await stateOf('testqueue/10')).state === 'completed');
    expect(starts.map((s) => s.n)).toEqual([9, 10, 9]); // job 10 did not wait for job 9's limit
    expect(starts[2]!.at - starts[0]!.at).toBeGreaterThanOrEqual(480);
    expect(starts.every((s) => s.attemptsMade === 0)).toBe(true);
  });

  it('resumes a retried job from its checkpoint, with the payload unchanged', async () => {
    const seen: { resumeFrom: unknown; payload: Payload }[] = [];
    await start(async (payload, ctx: JobContext<WorkerServices, { page: number }>) => {
      seen.push({ resumeFrom: ctx.resumeFrom, payload });
      if (!ctx.resumeFrom) {
        await ctx.checkpoint({ page: 3 });
        throw new Error('connection reset');
      }
    });
    await producer.enqueue(queue, { v: 1, n: 7 });
    await waitFor(async () => (await stateOf('testqueue/7')).state === 'completed');
    expect(seen).toEqual([
      { resumeFrom: undefined, payload: { v: 1, n: 7 } },
      { resumeFrom: { page: 3 }, payload: { v: 1, n: 7 } },
    ]);
  });

  it('enqueues follow-up work from a handler under its dedupe id', async () => {
    await start(async (payload, ctx) => { await ctx.enqueue(followUp, { v: 1, n: payload.n + 100 }, { delayMs: 60_000 }); });
    await producer.enqueue(queue, { v: 1, n: 8 });
    await waitFor(async () => (await stateOf('testqueue/8')).state === 'completed');
    const job = await producer.queue(followUp.name).getJob('followup/108');
    expect(await job?.getState()).toBe('delayed');
  });

  it('fires a schedule once per tick across two running workers', async () => {
    const ticks: string[] = [];
    const handler: JobHandler<Payload> = async (_payload, ctx) => { ticks.push(ctx.job.id); };
    const begun = Date.now();
    await start(handler, { schedule: 0.4 });
    await start(handler, { schedule: 0.4 });
    await waitFor(() => ticks.length >= 4, 15_000);
    const elapsedTicks = Math.ceil((Date.now() - begun) / 400);
    expect(await producer.queue(queue.name).getJobSchedulersCount()).toBe(1);
    expect(new Set(ticks).size).toBe(ticks.length); // no tick ran twice
    expect(ticks.length).toBeLessThanOrEqual(elapsedTicks + 1); // and none was doubled by the second replica
    const operation = (await registry.getSingleMetric('quay_worker_operation_duration_seconds')!.get()).values
      .find((v) => v.labels.operation === 'tick' && (v as { metricName?: string }).metricName?.endsWith('_count'));
    expect(operation?.value).toBeGreaterThanOrEqual(4);
  });

  it('fires a cron schedule once per matching second across two running workers', async () => {
    const ticks: string[] = [];
    const handler: JobHandler<Payload> = async (_payload, ctx) => { ticks.push(ctx.job.id); };
    const begun = Date.now();
    await start(handler, { schedule: '* * * * * *' });
    await start(handler, { schedule: '* * * * * *' });
    await waitFor(() => ticks.length >= 2, 15_000);
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(ticks.length).toBeLessThanOrEqual(Math.ceil((Date.now() - begun) / 1000) + 1);
  });

  it('returns disabled, with the reason logged, when the gate is off', async () => {
    const { log, lines } = captureLogger();
    const definition = defineWorker({
      name: 'gatedworker', queue, concurrency: 1,
      gate: (config) => ({ enabled: config.quay.FEATURE_REPO_MIRROR, reason: 'FEATURE_REPO_MIRROR is off' }),
      handler: async () => undefined,
    });
    const result = await runWorker(definition, { config: testConfig(), services: { db: pool }, redis: { url: REDIS_URL, prefix }, log });
    expect(result).toEqual({ disabled: true, reason: 'FEATURE_REPO_MIRROR is off' });
    expect(lines).toContainEqual(expect.objectContaining({ worker: 'gatedworker', reason: 'FEATURE_REPO_MIRROR is off' }));
  });
});
