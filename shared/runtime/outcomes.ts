/**
 * The named ways a job handler can end, besides returning (done). A handler throws one of these;
 * the runtime maps it onto BullMQ. Any other error means "retry with the contract's backoff".
 *
 * | thrown                  | what happens                                                      | attempt spent |
 * |-------------------------|-------------------------------------------------------------------|---------------|
 * | (return)                | done                                                              | —             |
 * | PermanentFailureError   | moved to the dead-letter view with its reason, never retried      | yes           |
 * | DeferError              | re-delayed by `delayMs` (lock busy, not yet due)                  | no            |
 * | RateLimitedError        | the whole queue pauses `delayMs`; the job goes back to waiting    | no            |
 * |                         | (workers with `pausesOnRateLimit`; otherwise only the job waits)  |               |
 * | Postgres unreachable    | re-delayed ~2–3 s until it answers again (`isDatabaseUnavailable`)  | no            |
 * | anything else           | retried after the backoff; dead-lettered after the last attempt   | yes           |
 *
 * Quay's names for the same ideas: JobException (retry), WorkerSleepException (defer).
 */

/** Not retried: bad payload, target gone, or anything a retry cannot fix. Dead-lettered with `reason`. */
export class PermanentFailureError extends Error {
  constructor(readonly reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = 'PermanentFailureError';
  }
}

/** Runs the job again after `delayMs` without spending an attempt (a lock is busy, work not yet due). */
export class DeferError extends Error {
  constructor(readonly delayMs: number, readonly reason: string) {
    super(`deferred ${delayMs} ms: ${reason}`);
    this.name = 'DeferError';
    if (!Number.isFinite(delayMs) || delayMs < 0) throw new RangeError(`DeferError delayMs must be >= 0, got ${delayMs}`);
  }
}

/**
 * An upstream asked us to slow down: the queue pauses `delayMs` for every worker, no attempt
 * spent (in a worker declared with `pausesOnRateLimit`; elsewhere only this job is re-delayed).
 */
export class RateLimitedError extends Error {
  constructor(readonly delayMs: number, readonly reason = 'rate limited upstream') {
    super(`rate limited for ${delayMs} ms: ${reason}`);
    this.name = 'RateLimitedError';
    if (!Number.isFinite(delayMs) || delayMs <= 0) throw new RangeError(`RateLimitedError delayMs must be > 0, got ${delayMs}`);
  }
}

/**
 * How a job run ended, as counted by `quayfleet_worker_jobs_total{outcome}`. `handed_back` is a
 * job interrupted by shutdown and returned to the queue without spending an attempt.
 */
export type JobOutcome = 'done' | 'retried' | 'dead_lettered' | 'deferred' | 'rate_limited' | 'handed_back';

/** Every outcome, for pre-creating metric children. */
export const JOB_OUTCOMES: readonly JobOutcome[] = ['done', 'retried', 'dead_lettered', 'deferred', 'rate_limited', 'handed_back'];
