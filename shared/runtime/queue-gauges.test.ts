import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../db/pool.ts';
import { REDIS_URL, uniquePrefix } from '../../test/helpers/redis.ts';
import { TEST_POSTGRES_URL } from '../../test/servers/ports.ts';
import { registry } from '../metrics/index.ts';
import { PermanentFailureError } from './outcomes.ts';
import { createProducer, type Producer } from './producer.ts';
import { registerQueueGauges } from './queue-gauges.ts';
import { queueStatus } from './queue-status.ts';
import { runWorker, type RunningWorker } from './run-worker.ts';
import { captureLogger, sleep, testConfig, testQueue, waitFor } from './test-support/index.ts';
import { defineWorker } from './worker.ts';

const queue = testQueue('gaugequeue');
const prefix = uniquePrefix('gauges');
let pool: Pool;
let producer: Producer;
let worker: RunningWorker;
let release: () => void = () => undefined;

async function gauge(name: string, queueName = queue.name): Promise<number | undefined> {
  const values = (await registry.getSingleMetric(name)!.get()).values;
  return values.find((v) => v.labels.queue_name === queueName)?.value;
}

beforeAll(async () => {
  pool = createPool({ connectionString: TEST_POSTGRES_URL, max: 1 });
  producer = createProducer({ url: REDIS_URL, prefix });
  const held = new Promise<void>((resolve) => { release = resolve; });
  const running = await runWorker(defineWorker({
    name: 'gaugeworker', queue, concurrency: 1,
    handler: async (payload) => {
      if (payload.n === 5) throw new PermanentFailureError('target gone');
      await held; // n=1 stays active, so the worker (concurrency 1) fetches nothing else
    },
  }), { config: testConfig(), services: { db: pool }, redis: { url: REDIS_URL, prefix }, log: captureLogger().log });
  if (running.disabled) throw new Error('unexpectedly disabled');
  worker = running;

  await producer.enqueue(queue, { v: 1, n: 5 });                       // failed (dead letter)
  await waitFor(async () => (await producer.queue(queue.name).getFailedCount()) === 1);
  await producer.enqueue(queue, { v: 1, n: 1 });                       // active
  await waitFor(async () => (await producer.queue(queue.name).getActiveCount()) === 1);
  await producer.enqueue(queue, { v: 1, n: 2 });                       // waiting
  await producer.enqueue(queue, { v: 1, n: 3 }, { delayMs: 200 });    // delayed, due once 200 ms pass
  await producer.enqueue(queue, { v: 1, n: 4 }, { delayMs: 3_600_000 }); // delayed, not due
  await sleep(400);
});

afterAll(async () => {
  release();
  await worker.stop(2000);
  await producer.queue(queue.name).obliterate({ force: true });
  await producer.close();
  await pool.end();
});

describe('queue status and gauges', () => {
  it('counts each BullMQ state', async () => {
    const [status] = await queueStatus(producer, [queue.name]);
    expect(status).toMatchObject({
      queueName: queue.name, waiting: 1, prioritized: 0, active: 1, delayed: 2, delayedDue: 1, failed: 1,
      locked: 1, availableUnlocked: 2, available: 3,
    });
    expect(status!.oldestWaitingAgeSeconds).toBeGreaterThanOrEqual(0.19);
    expect(status!.oldestWaitingAgeSeconds).toBeLessThan(30);
  });

  it("maps them onto Quay's gauges on scrape: locked = active, available_unlocked = waiting + due delayed, available = both", async () => {
    const unregister = registerQueueGauges(producer, [queue.name, 'dockerfilebuild']);
    try {
      expect(await gauge('quay_queue_items_locked')).toBe(1);
      expect(await gauge('quay_queue_items_available_unlocked')).toBe(2);
      expect(await gauge('quay_queue_items_available')).toBe(3);
      expect(await gauge('quayfleet_queue_dead_letter_jobs')).toBe(1);
      expect(await gauge('quayfleet_queue_oldest_waiting_age_seconds')).toBeGreaterThan(0.19);
      // The reserved build queue is reported, empty, as Quay dashboards expect.
      expect(await gauge('quay_queue_items_available', 'dockerfilebuild')).toBe(0);
      expect(await gauge('quayfleet_queue_oldest_waiting_age_seconds', 'dockerfilebuild')).toBeUndefined();
      expect(await registry.metrics()).toMatch(/quay_queue_items_locked\{queue_name="gaugequeue"\} 1/);
    } finally {
      unregister();
    }
  });
});
