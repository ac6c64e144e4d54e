/**
 * What can be done with a dead letter (a job in BullMQ's failed set, kept a week with its reason):
 * replay it, drop it, or let new work with the same dedupe id replace it.
 *
 * A dead letter keeps its job id, which is its dedupe id, so without `reviveDeadLetters` an
 * enqueue of the same work would be a silent no-op for the week it is kept. Producers (the
 * producer's `enqueue`, the outbox relay) therefore replace a dead-lettered job by the new one: a
 * reconciler that re-enqueues work, or a committed change that asks for it again, gets a fresh
 * job with all its attempts. A job still waiting, delayed or active is left alone (that is the
 * deduplication), and so is a completed one kept for debugging.
 */
import type { Job, Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { QueueSource } from './queue-status.ts';

/** A dead letter that was asked for by id and is not there (never was, replayed, or dropped). */
export class DeadLetterNotFoundError extends Error {
  constructor(readonly queueName: string, readonly jobId: string, readonly state: string) {
    super(state === 'unknown'
      ? `no job ${jobId} in ${queueName}`
      : `job ${jobId} in ${queueName} is not dead-lettered (it is ${state})`);
    this.name = 'DeadLetterNotFoundError';
  }
}

const BATCH = 100;

/** Puts a dead letter back in its queue with all its attempts, under the same job (dedupe) id. */
export async function replayDeadLetter(source: QueueSource, queueName: string, jobId: string): Promise<void> {
  const job = await failedJob(source.queue(queueName), jobId);
  await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
}

/** Removes one dead letter for good. */
export async function dropDeadLetter(source: QueueSource, queueName: string, jobId: string): Promise<void> {
  const job = await failedJob(source.queue(queueName), jobId);
  await job.remove();
}

/** Called after each dead letter examined: `done` of `total` taken when the call started. */
export type DeadLetterProgress = (done: number, total: number) => void;

/** Replays every dead letter of the queue, in batches; returns how many. */
export async function replayAllDeadLetters(source: QueueSource, queueName: string, onProgress?: DeadLetterProgress): Promise<number> {
  return forEachDeadLetter(source.queue(queueName), (job) => job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }), onProgress);
}

/** Drops every dead letter of the queue, in batches; returns how many. */
export async function dropAllDeadLetters(source: QueueSource, queueName: string, onProgress?: DeadLetterProgress): Promise<number> {
  return forEachDeadLetter(source.queue(queueName), (job) => job.remove(), onProgress);
}

async function failedJob(queue: Queue, jobId: string): Promise<Job> {
  const state = await queue.getJobState(jobId);
  const job = state === 'failed' ? await queue.getJob(jobId) : undefined;
  if (!job) throw new DeadLetterNotFoundError(queue.name, jobId, state);
  return job;
}

/**
 * Removes those of `jobIds` that are dead letters of `queue`, so that adding them next creates
 * fresh jobs; `redis` is a connection to the queue's server. Returns the ids removed. One round
 * trip when none is (the common case).
 */
export async function reviveDeadLetters(redis: Redis | Cluster, queue: Queue, jobIds: readonly string[]): Promise<string[]> {
  if (jobIds.length === 0) return [];
  const scores = await redis.zmscore(queue.keys.failed!, ...jobIds);
  const dead = jobIds.filter((_, i) => scores[i] !== null);
  // remove() refuses (0) a job that is locked, which a failed job never is.
  for (const jobId of dead) await queue.remove(jobId);
  return dead;
}

/**
 * Applies `act` to every job dead-lettered when the call starts; a replayed job that fails again
 * meanwhile is not taken a second time. Returns how many were acted on.
 */
async function forEachDeadLetter(queue: Queue, act: (job: Job) => Promise<void>, onProgress?: DeadLetterProgress): Promise<number> {
  const ids: string[] = [];
  // At most KEEP_DEAD_LETTERS.count (10 000) ids are kept; a page of jobs at a time is read.
  for (let start = 0; ; start += BATCH) {
    const page = await queue.getFailed(start, start + BATCH - 1);
    for (const job of page) if (job?.id) ids.push(job.id);
    if (page.length < BATCH) break;
  }
  let done = 0;
  onProgress?.(0, ids.length);
  for (const [index, id] of ids.entries()) {
    const job = await queue.getJob(id);
    if (job && (await job.isFailed())) {
      await act(job);
      done++;
    }
    onProgress?.(index + 1, ids.length);
  }
  return done;
}
