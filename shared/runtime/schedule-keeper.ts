/**
 * Keeps a worker's schedules in Redis. Job schedulers live only in Redis: a FLUSHALL, or a
 * restart of a Redis without persistence (or a failover to a replica that had not caught up),
 * deletes them, and since a worker upserts its schedules only when it starts, every periodic
 * trigger (the GC sweep, the reconcilers that rebuild lost jobs from Postgres) would stay silent
 * until the next restart of the process. The keeper looks for the worker's schedulers every few
 * seconds and re-creates the missing ones; a present scheduler is left alone, so ticks are not
 * moved or doubled.
 */
import type { Queue } from 'bullmq';
import type { QueueContract, VersionedPayload } from '../../queues/contract.ts';
import type { Logger } from './logger.ts';
import { upsertSchedules } from './schedules.ts';
import type { ScheduleSpec } from './worker.ts';

/** How often a worker checks that its schedulers still exist. */
export const SCHEDULE_CHECK_MS = 5000;

/** A running keeper; `stop()` ends its checks (repeat-safe). */
export interface ScheduleKeeper {
  stop(): void;
}

/**
 * Checks every `intervalMs` that each of `schedules` has its scheduler on `queue`, and upserts
 * the missing ones. A check that fails (Redis unreachable) is logged and tried again next time;
 * checks never overlap.
 */
export function keepSchedules<P extends VersionedPayload>(
  queue: Queue, contract: QueueContract<P>, schedules: readonly ScheduleSpec<P>[], log: Logger, intervalMs = SCHEDULE_CHECK_MS,
): ScheduleKeeper {
  if (schedules.length === 0) return { stop() { /* nothing scheduled */ } };
  let checking = false;
  const check = async (): Promise<void> => {
    const missing: ScheduleSpec<P>[] = [];
    for (const spec of schedules) if (!(await queue.getJobScheduler(spec.id))) missing.push(spec);
    if (missing.length === 0) return;
    await upsertSchedules(queue, contract, missing);
    log.warn({ schedules: missing.map((s) => s.id) }, 'schedules missing from Redis (flushed or restarted); re-created');
  };
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    check()
      .catch((error: unknown) => log.warn({ err: error }, 'could not check the schedules in Redis; trying again'))
      .finally(() => { checking = false; });
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
