/**
 * The BullMQ processor that wraps a worker's handler: validates the payload, builds `ctx`, runs
 * the handler, and maps how it ended onto BullMQ (outcomes.ts). Every job of every worker passes
 * through here, so the success path allocates only the context object and one Map entry.
 */
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { VersionedPayload } from '../../queues/contract.ts';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import { jobLogger } from './job-context.ts';
import { DeferError, PermanentFailureError, RateLimitedError, type JobOutcome } from './outcomes.ts';
import type { ActiveJob, WorkerRuntime } from './worker-runtime.ts';

/**
 * How long a job that met an unreachable Postgres waits before it runs again (plus up to a second
 * of jitter, so a fleet's jobs do not return all at once). No attempt is spent: an outage of any
 * length must not dead-letter work, and the job is idempotent.
 */
export const DATABASE_UNAVAILABLE_RETRY_MS = 2000;

/** What a failed run becomes: the outcome to count and the error to give BullMQ. */
interface MappedFailure {
  readonly outcome: JobOutcome;
  readonly error: Error;
}

/**
 * The processor of one worker. It takes two parameters so that BullMQ creates no AbortController
 * per job; the context makes its own on demand and shutdown aborts it (WorkerRuntime.abortAll).
 */
export function createProcessor(rt: WorkerRuntime): (job: Job, token?: string) => Promise<void> {
  return async (job, token) => {
    const lockToken = token ?? '';
    const entry = rt.track(job, lockToken);
    const startedAt = performance.now();
    let outcome: JobOutcome = 'done';
    try {
      const payload = parsePayload(rt, job);
      const ctx = new rt.Context(rt, job, entry, payload);
      entry.ctx = ctx;
      await rt.handler(payload, ctx as never);
      if (entry.handedBack) outcome = 'handed_back';
    } catch (error) {
      const failure = await mapFailure(rt, job, lockToken, entry, error);
      outcome = failure.outcome;
      throw failure.error;
    } finally {
      rt.finish(job, outcome, startedAt);
    }
    // Shutdown already returned this job to the queue: completing it now would lose the lock race.
    if (outcome === 'handed_back') throw new DelayedError('handed back at shutdown');
  };
}

/** The job's payload, validated; a payload failing its schema fails every retry too: permanent. */
function parsePayload(rt: WorkerRuntime, job: Job): VersionedPayload {
  try {
    return rt.contract.parse(job.data);
  } catch (error) {
    throw new PermanentFailureError((error as Error).message, { cause: error });
  }
}

/** Maps a thrown error to an outcome, doing the BullMQ move it needs. Logs once, here. */
async function mapFailure(
  rt: WorkerRuntime, job: Job, token: string, entry: ActiveJob, error: unknown,
): Promise<MappedFailure> {
  const log = entry.ctx?.log ?? jobLogger(rt, job, undefined);
  if (entry.handedBack) return { outcome: 'handed_back', error: new DelayedError('handed back at shutdown') };
  try {
    if (rt.abortedByShutdown(entry)) {
      // The handler honoured the shutdown signal: return the job untouched, attempt not spent.
      entry.handedBack = true;
      await job.moveToDelayed(Date.now(), token);
      log.info('job interrupted by shutdown; handed back to the queue');
      return { outcome: 'handed_back', error: new DelayedError('handed back at shutdown') };
    }
    if (error instanceof PermanentFailureError) {
      log.warn({ reason: error.reason }, 'job failed permanently; dead-lettered');
      return { outcome: 'dead_lettered', error: new UnrecoverableError(error.reason) };
    }
    if (error instanceof DeferError) {
      await job.moveToDelayed(Date.now() + error.delayMs, token);
      log.debug({ delayMs: error.delayMs, reason: error.reason }, 'job deferred');
      return { outcome: 'deferred', error: new DelayedError(error.message) };
    }
    if (isDatabaseUnavailable(error)) {
      const delayMs = DATABASE_UNAVAILABLE_RETRY_MS + Math.floor(Math.random() * 1000);
      await job.moveToDelayed(Date.now() + delayMs, token);
      log.warn({ err: error, delayMs }, 'database unavailable; job will run again without spending an attempt');
      return { outcome: 'deferred', error: new DelayedError('database unavailable') };
    }
    if (error instanceof RateLimitedError) {
      if (!rt.pausesOnRateLimit) {
        // Without a limiter BullMQ would ignore the queue's rate-limit key and refetch at once.
        await job.moveToDelayed(Date.now() + error.delayMs, token);
        log.warn({ delayMs: error.delayMs, reason: error.reason }, 'rate limited; deferring this job only (the worker does not set pausesOnRateLimit)');
        return { outcome: 'rate_limited', error: new DelayedError(error.message) };
      }
      await rt.queue.rateLimit(error.delayMs);
      log.info({ delayMs: error.delayMs, reason: error.reason }, 'queue rate limited');
      return { outcome: 'rate_limited', error: Worker.RateLimitError() };
    }
  } catch (moveError) {
    // Redis refused the move (lost lock, connection): let BullMQ treat it as a failed attempt.
    log.error({ err: moveError }, 'could not apply the job outcome; counting a failed attempt');
    return { outcome: 'retried', error: moveError as Error };
  }
  const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  if (last) log.error({ err: error }, 'job failed on its last attempt; dead-lettered');
  else log.warn({ err: error }, 'job failed; will retry after backoff');
  return { outcome: last ? 'dead_lettered' : 'retried', error: error instanceof Error ? error : new Error(String(error)) };
}
