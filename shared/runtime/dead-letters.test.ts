/**
 * Dead letters on the real Redis: a job that failed keeps its dedupe id for a week, yet the same
 * work can be enqueued again (the producer replaces the dead letter), replayed under its id, or
 * dropped.
 */
import { UnrecoverableError, Worker } from 'bullmq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REDIS_URL, uniquePrefix } from '../../test/helpers/redis.ts';
import {
  DeadLetterNotFoundError, dropAllDeadLetters, dropDeadLetter, replayAllDeadLetters, replayDeadLetter,
} from './dead-letters.ts';
import { createProducer, type Producer } from './producer.ts';
import { listDeadLetters } from './queue-status.ts';
import { testQueue, waitFor } from './test-support/index.ts';

const queue = testQueue('dlqtest');
let prefix: string;
let producer: Producer;

beforeEach(() => {
  prefix = uniquePrefix('dlq');
  producer = createProducer({ url: REDIS_URL, prefix });
});
afterEach(async () => {
  await producer.queue(queue.name).obliterate({ force: true });
  await producer.close();
});

/** Enqueues `ns` and lets a real worker fail each permanently; resolves once all are dead letters. */
async function deadLetters(ns: number[]): Promise<void> {
  for (const n of ns) await producer.enqueue(queue, { v: 1, n });
  const worker = new Worker(queue.name, async () => { throw new UnrecoverableError('target is gone'); }, {
    connection: { url: REDIS_URL, maxRetriesPerRequest: null }, prefix,
  });
  try {
    await waitFor(async () => (await producer.queue(queue.name).getFailedCount()) === ns.length || undefined);
  } finally {
    await worker.close();
  }
}

async function stateOf(n: number) {
  const job = await producer.queue(queue.name).getJob(`dlqtest/${n}`);
  return { state: await job?.getState(), attemptsMade: job?.attemptsMade, data: job?.data as unknown };
}

describe('dead letters', () => {
  it('an enqueue of the same work replaces the dead letter with a fresh job', async () => {
    await deadLetters([1]);
    expect(await stateOf(1)).toMatchObject({ state: 'failed', attemptsMade: 1 });
    await producer.enqueue(queue, { v: 1, n: 1, repositoryId: 9 });
    expect(await stateOf(1)).toEqual({ state: 'waiting', attemptsMade: 0, data: { v: 1, n: 1, repositoryId: 9 } });
    // A job that is still waiting stays deduplicated: the second enqueue changes nothing.
    await producer.enqueue(queue, { v: 1, n: 1, repositoryId: 10 });
    expect((await stateOf(1)).data).toEqual({ v: 1, n: 1, repositoryId: 9 });
    expect(await producer.queue(queue.name).getWaitingCount()).toBe(1);
  });

  it('replays one dead letter under its own id, with all its attempts', async () => {
    await deadLetters([2, 3]);
    await replayDeadLetter(producer, queue.name, 'dlqtest/2');
    expect(await stateOf(2)).toMatchObject({ state: 'waiting', attemptsMade: 0, data: { v: 1, n: 2 } });
    expect(await stateOf(3)).toMatchObject({ state: 'failed' });
    // Not a dead letter (any more), or no such job: a clear error, nothing changes.
    await expect(replayDeadLetter(producer, queue.name, 'dlqtest/2')).rejects.toThrow('job dlqtest/2 in dlqtest is not dead-lettered (it is waiting)');
    await expect(replayDeadLetter(producer, queue.name, 'dlqtest/404')).rejects.toThrow(DeadLetterNotFoundError);
  });

  it('replays and drops all of a queue, each once', async () => {
    await deadLetters([4, 5, 6]);
    await dropDeadLetter(producer, queue.name, 'dlqtest/4');
    expect(await stateOf(4)).toMatchObject({ state: undefined });
    expect(await replayAllDeadLetters(producer, queue.name)).toBe(2);
    expect(await producer.queue(queue.name).getWaitingCount()).toBe(2);
    expect(await listDeadLetters(producer, queue.name)).toEqual([]);
    await deadLetters([5, 6]);
    expect(await dropAllDeadLetters(producer, queue.name)).toBe(2);
    expect(await producer.queue(queue.name).getJobCounts('failed', 'waiting')).toEqual({ failed: 0, waiting: 0 });
  });
});
