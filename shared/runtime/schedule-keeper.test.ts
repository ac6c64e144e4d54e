import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REDIS_URL, uniquePrefix } from '../../test/helpers/redis.ts';
import { createProducer, type Producer } from './producer.ts';
import { keepSchedules, type ScheduleKeeper } from './schedule-keeper.ts';
import { upsertSchedules } from './schedules.ts';
import { captureLogger, testQueue, waitFor } from './test-support/index.ts';

const contract = testQueue('keeperqueue');
const schedules = [{ id: 'sweep', everySeconds: 60, payload: contract.parse({ v: 1, n: 0 }) }];

let prefix: string;
let producer: Producer;
let redis: Redis;
let keeper: ScheduleKeeper | undefined;

beforeEach(() => {
  prefix = uniquePrefix('keeper');
  producer = createProducer({ url: REDIS_URL, prefix });
  redis = new Redis(REDIS_URL);
});
afterEach(async () => {
  keeper?.stop();
  await producer.queue(contract.name).obliterate({ force: true });
  await producer.close();
  redis.disconnect();
});

/** Deletes every key of the test's prefix: what FLUSHALL does to the fleet's queues. */
async function flushPrefix(): Promise<number> {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  return keys.length;
}

describe('schedule keeper', () => {
  it('re-creates a schedule Redis lost (flushed), once, and leaves a present one alone', async () => {
    const queue = producer.queue(contract.name);
    await upsertSchedules(queue, contract, schedules);
    const before = await queue.getJobScheduler('sweep');
    const { log, lines } = captureLogger();
    keeper = keepSchedules(queue, contract, schedules, log, 100);
    await new Promise((resolve) => setTimeout(resolve, 400));
    // Present: untouched (same next tick, nothing logged).
    expect((await queue.getJobScheduler('sweep'))?.next).toBe(before?.next);
    expect(lines.filter((l) => l.msg === 'schedules missing from Redis (flushed or restarted); re-created')).toHaveLength(0);

    expect(await flushPrefix()).toBeGreaterThan(0);
    expect(await queue.getJobScheduler('sweep')).toBeUndefined();
    const back = await waitFor(() => queue.getJobScheduler('sweep'), 5000);
    expect(back).toMatchObject({ key: 'sweep', every: 60_000 });
    // The next tick's job is there again too.
    await waitFor(async () => {
      const counts = await queue.getJobCounts('waiting', 'delayed');
      return (counts.waiting ?? 0) + (counts.delayed ?? 0) === 1;
    }, 5000);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(lines.filter((l) => l.msg === 'schedules missing from Redis (flushed or restarted); re-created')).toHaveLength(1);
  });

  it('stops checking when stopped', async () => {
    const queue = producer.queue(contract.name);
    const { log } = captureLogger();
    keeper = keepSchedules(queue, contract, schedules, log, 50);
    await waitFor(() => queue.getJobScheduler('sweep'), 5000);
    keeper.stop();
    await flushPrefix();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await queue.getJobScheduler('sweep')).toBeUndefined();
  });
});
