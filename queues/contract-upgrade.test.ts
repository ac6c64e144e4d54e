/**
 * A rolling upgrade of a queue contract: a job enqueued by the old release (payload v1) waits in
 * the real Redis and is processed by a worker of the new release (payload v2), which reads it
 * through the contract's `readOlder`. Without a reader, the old job is dead-lettered with a
 * reason naming the version, never run with a payload it does not understand.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createPool } from '../shared/db/pool.ts';
import { createProducer } from '../shared/runtime/producer.ts';
import { listDeadLetters } from '../shared/runtime/queue-status.ts';
import { runWorker, type RunningWorker } from '../shared/runtime/run-worker.ts';
import { captureLogger, testConfig, waitFor } from '../shared/runtime/test-support/index.ts';
import { defineWorker } from '../shared/runtime/worker.ts';
import { REDIS_URL, uniquePrefix } from '../test/helpers/redis.ts';
import { TEST_POSTGRES_URL } from '../test/servers/ports.ts';
import { defineQueue, KEEP_COMPLETED, KEEP_DEAD_LETTERS } from './contract.ts';

const jobOptions = { attempts: 1, backoff: { type: 'exponential' as const, delay: 10, jitter: 0 }, removeOnComplete: KEEP_COMPLETED, removeOnFail: KEEP_DEAD_LETTERS };
/** The old release: a purge named by repository id. */
const v1 = defineQueue({ name: 'upgradequeue', version: 1, payload: z.object({ v: z.literal(1), repositoryId: z.number() }), jobOptions, dedupeId: (p) => `upgradequeue/${p.repositoryId}` });
const v2Payload = z.object({ v: z.literal(2), repositoryId: z.number(), reason: z.enum(['deleted', 'expired']) });
/** The new release: the purge also says why, and old jobs read as "deleted". */
const v2 = defineQueue({
  name: 'upgradequeue', version: 2, payload: v2Payload, jobOptions, dedupeId: (p) => `upgradequeue/${p.repositoryId}`,
  readOlder: { 1: (old) => ({ v: 2, repositoryId: old.repositoryId, reason: 'deleted' }) },
});
const v2WithoutReader = defineQueue({ name: 'upgradequeue', version: 2, payload: v2Payload, jobOptions, dedupeId: (p) => `upgradequeue/${p.repositoryId}` });

const running: RunningWorker[] = [];
afterEach(async () => { await Promise.all(running.splice(0).map((w) => w.stop(2000))); });

describe('queue contract upgrade', () => {
  it.each([['with a reader', v2, 'completed'], ['without one', v2WithoutReader, 'failed']] as const)('an old job meets a new worker %s', async (_label, contract, expected) => {
    const settings = { url: REDIS_URL, prefix: uniquePrefix('upgrade') };
    const producer = createProducer(settings);
    const pool = createPool({ connectionString: TEST_POSTGRES_URL, max: 1 });
    const seen: unknown[] = [];
    try {
      const jobId = await producer.enqueue(v1, { v: 1, repositoryId: 42 });
      const worker = await runWorker(defineWorker({ name: 'upgradeworker', queue: contract, concurrency: 1, handler: async (payload) => { seen.push(payload); } }),
        { config: testConfig(), services: { db: pool }, redis: settings, log: captureLogger().log });
      if (!worker.disabled) running.push(worker);
      await waitFor(async () => (await producer.queue(v1.name).getJobState(jobId)) === expected || undefined, 20_000);
      if (expected === 'completed') {
        expect(seen).toEqual([{ v: 2, repositoryId: 42, reason: 'deleted' }]);
      } else {
        expect(seen).toEqual([]);
        const [letter] = await listDeadLetters(producer, v1.name);
        expect(letter).toMatchObject({ jobId, permanent: true });
        expect(letter!.reason).toMatch(/expected 2/);
      }
    } finally {
      await Promise.all(running.splice(0).map((w) => w.stop(2000)));
      await producer.queue(v1.name).obliterate({ force: true });
      await producer.close();
      await pool.end();
    }
  });
});
