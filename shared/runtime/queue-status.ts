/**
 * What is in each queue, read from BullMQ, and how that maps onto Quay's three queue gauges.
 *
 * Quay counts rows of its `queueitem` table: an item is *available* when it is due and either
 * unclaimed or its lease expired, *locked* while a worker holds its lease. BullMQ keeps jobs in
 * states instead; the mapping is:
 *
 * | Quay                                  | BullMQ                                                     |
 * |---------------------------------------|------------------------------------------------------------|
 * | `quay_queue_items_locked`             | active                                                     |
 * | `quay_queue_items_available_unlocked` | waiting + prioritized + delayed jobs already due           |
 * | `quay_queue_items_available`          | available_unlocked + locked                                |
 * | (not counted)                         | delayed jobs not yet due, failed (dead letters), completed |
 *
 * A delayed job is due when its time has come but no worker has promoted it yet (no worker is
 * running, or all are busy). Quay counts distinct canonical names; BullMQ job ids are already
 * unique per dedupe id, so counting jobs is the same thing.
 */
import type { Job, Queue } from 'bullmq';
import { ALL_QUEUE_NAMES } from '../../queues/index.ts';

/** Anything that hands out BullMQ queue handles by name (a Producer does). */
export interface QueueSource {
  queue(queueName: string): Queue;
}

/** One queue's counts, plus the Quay gauges derived from them. */
export interface QueueStatus {
  readonly queueName: string;
  readonly waiting: number;
  readonly prioritized: number;
  readonly active: number;
  /** All delayed jobs, due or not. */
  readonly delayed: number;
  /** Delayed jobs whose time has come. */
  readonly delayedDue: number;
  /** Dead letters. */
  readonly failed: number;
  /**
   * Seconds the oldest runnable job has waited: since it was enqueued (plus its initial delay)
   * or since its last run started, whichever is later; null when nothing is runnable.
   */
  readonly oldestWaitingAgeSeconds: number | null;
  readonly available: number;
  readonly locked: number;
  readonly availableUnlocked: number;
}

/** The status of each named queue (every queue of the fleet by default). */
export async function queueStatus(source: QueueSource, names: readonly string[] = ALL_QUEUE_NAMES, now = Date.now()): Promise<QueueStatus[]> {
  return Promise.all(names.map((name) => statusOf(source.queue(name), now)));
}

async function statusOf(queue: Queue, now: number): Promise<QueueStatus> {
  const [counts, delayedDue, oldest] = await Promise.all([
    queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'),
    // "strictly before": a job due at this very millisecond counts.
    queue.getDelayedCount(now + 1),
    oldestRunnableSince(queue, now),
  ]);
  const waiting = counts.waiting ?? 0;
  const prioritized = counts.prioritized ?? 0;
  const active = counts.active ?? 0;
  const availableUnlocked = waiting + prioritized + delayedDue;
  return {
    queueName: queue.name,
    waiting,
    prioritized,
    active,
    delayed: counts.delayed ?? 0,
    delayedDue,
    failed: counts.failed ?? 0,
    oldestWaitingAgeSeconds: oldest === undefined ? null : Math.max(0, (now - oldest) / 1000),
    available: availableUnlocked + active,
    locked: active,
    availableUnlocked,
  };
}

/** Epoch ms since which the oldest runnable job (next in the wait list, or earliest due delayed) waits. */
async function oldestRunnableSince(queue: Queue, now: number): Promise<number | undefined> {
  // Ascending order puts the wait list's tail (the next job to run, the oldest) first.
  const [nextWaiting, nextDelayed] = await Promise.all([
    queue.getJobs(['waiting'], 0, 0, true),
    queue.getJobs(['delayed'], 0, 0, true),
  ]);
  const since: number[] = [];
  if (nextWaiting[0]) since.push(runnableSince(nextWaiting[0] as Job));
  const delayed = nextDelayed[0] as Job | undefined;
  if (delayed) {
    const dueAt = runnableSince(delayed);
    if (dueAt <= now) since.push(dueAt);
  }
  return since.length ? Math.min(...since) : undefined;
}

/** When a job last became runnable, as far as BullMQ records it. */
function runnableSince(job: Job): number {
  return Math.max(job.timestamp + (job.opts.delay ?? 0), job.processedOn ?? 0);
}

/** A job in the dead-letter view (BullMQ's failed set). */
export interface DeadLetter {
  readonly jobId: string;
  readonly queueName: string;
  /** The PermanentFailureError reason, or the last error's message. */
  readonly reason: string;
  /** True when the handler declared it permanent; false when it ran out of attempts or stalled too often. */
  readonly permanent: boolean;
  readonly attemptsMade: number;
  readonly failedAt: Date | undefined;
  readonly payload: unknown;
}

/** Dead letters of one queue, newest first, `limit` at most (100 by default), from `offset`. */
export async function listDeadLetters(source: QueueSource, queueName: string, options: { offset?: number; limit?: number } = {}): Promise<DeadLetter[]> {
  const offset = options.offset ?? 0;
  const jobs = await source.queue(queueName).getFailed(offset, offset + (options.limit ?? 100) - 1);
  return jobs.filter((job): job is Job => Boolean(job)).map((job) => ({
    jobId: job.id ?? '',
    queueName,
    reason: job.failedReason,
    // BullMQ saves each failure's stack; an UnrecoverableError is what PermanentFailureError becomes.
    permanent: (job.stacktrace ?? []).some((line) => line?.startsWith('UnrecoverableError')),
    attemptsMade: job.attemptsMade,
    failedAt: job.finishedOn ? new Date(job.finishedOn) : undefined,
    payload: job.data,
  }));
}
