/**
 * Periodic triggers as BullMQ job schedulers. Every replica of a worker upserts the same
 * scheduler ids at start; BullMQ keeps one schedule per id and creates exactly one job per tick,
 * so a tick fires once across the fleet however many replicas run (Quay staggered per-process
 * timers instead, and every process ran every operation).
 */
import type { Queue } from 'bullmq';
import type { QueueContract, VersionedPayload } from '../../queues/contract.ts';
import type { ScheduleSpec } from './worker.ts';

/** BullMQ repeat options of a schedule: `every` is aligned to multiples of the period. */
export function repeatOptions(spec: ScheduleSpec<unknown>): { every: number } | { pattern: string; tz?: string } {
  if ('everySeconds' in spec) {
    if (!(spec.everySeconds > 0)) throw new Error(`schedule ${spec.id}: everySeconds must be > 0`);
    return { every: Math.round(spec.everySeconds * 1000) };
  }
  return spec.timezone ? { pattern: spec.cron, tz: spec.timezone } : { pattern: spec.cron };
}

/** Creates or updates each schedule on `queue`; payloads must already be valid for `contract`. */
export async function upsertSchedules<P extends VersionedPayload>(
  queue: Queue, contract: QueueContract<P>, schedules: readonly ScheduleSpec<P>[],
): Promise<void> {
  const { attempts, backoff, removeOnComplete, removeOnFail } = contract.jobOptions;
  for (const spec of schedules) {
    await queue.upsertJobScheduler(spec.id, repeatOptions(spec), {
      name: spec.id,
      data: spec.payload,
      // Each tick has its own job id, so keeping the last hundred for history swallows nothing.
      opts: { attempts, backoff, removeOnComplete: removeOnComplete === true ? true : { count: 100 }, removeOnFail },
    });
  }
}
