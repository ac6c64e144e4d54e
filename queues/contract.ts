/**
 * Queue contracts: the one place a queue's name, payload schema, job options and dedupe id are
 * spelled. Producers (the front end, the outbox, other workers) and the worker that consumes a
 * queue both import its contract, so a payload is validated with the same schema at enqueue and
 * at dequeue.
 *
 * Glossary
 * - queue: a named BullMQ queue; its name is Quay's `queue_name` label value.
 * - payload: the job's data, a small versioned object of ids (and names, for logs only).
 * - dedupe id: the BullMQ job id, derived from the payload. Adding a job whose id already exists
 *   (waiting, delayed, active, or kept after it completed) is a no-op, which is what makes
 *   republishing from the outbox and re-triggering from a reconciler safe. A dead-lettered job
 *   with that id is replaced by the new one, so failed work can be asked for again
 *   (shared/runtime/dead-letters.ts).
 * - attempt: one run of the handler that may fail; deferrals and rate limits do not spend one.
 * - dead letter: a job kept in BullMQ's failed set with its reason, not retried.
 *
 * This module imports only the schema library, like every file in this folder.
 */
import { z } from 'zod';

/** How long BullMQ keeps a finished job; `age` is in seconds (BullMQ's unit), `count` is a cap. */
export interface KeepJobs {
  readonly age: number;
  readonly count: number;
}

/**
 * The BullMQ job options a contract fixes. Structurally a subset of BullMQ's `JobsOptions`, so
 * this folder does not need to import BullMQ.
 */
export interface ContractJobOptions {
  /** Total runs allowed, the first included (Quay's `retries_remaining` at put time). */
  readonly attempts: number;
  /** Delay before retry n is `delay * 2^(n-1)` ms, minus up to `jitter` of it. */
  readonly backoff: { readonly type: 'exponential'; readonly delay: number; readonly jitter: number };
  /** `true` removes a completed job at once; otherwise it is kept, bounded by age and count. */
  readonly removeOnComplete: true | KeepJobs;
  /** Failed jobs are the dead-letter view: kept, but bounded so Redis memory stays bounded. */
  readonly removeOnFail: KeepJobs;
}

const HOUR_S = 3600;
const DAY_S = 24 * HOUR_S;

/** Quay's `QueueWorker` default `retry_after_seconds`, used as the base of the exponential backoff. */
export const DEFAULT_RETRY_AFTER_MS = 300_000;
/** Quay's default `retries_remaining`. */
export const DEFAULT_ATTEMPTS = 5;

/**
 * Keep completed jobs for a day (at most 1000) for debugging. Only for queues whose dedupe ids
 * never recur: a kept job would swallow a later job with the same id.
 */
export const KEEP_COMPLETED: KeepJobs = { age: DAY_S, count: 1000 };
/** Remove completed jobs at once: for queues whose dedupe id legitimately recurs (a next sync). */
export const REMOVE_COMPLETED = true;
/** Dead letters stay a week (at most 10 000 per queue), long enough for an operator to look. */
export const KEEP_DEAD_LETTERS: KeepJobs = { age: 7 * DAY_S, count: 10_000 };

/** Job options for a queue: Quay's retry count and retry_after, exponential, with 10 % jitter. */
export function jobOptions(options: {
  attempts?: number;
  retryAfterMs?: number;
  removeOnComplete: true | KeepJobs;
}): ContractJobOptions {
  return {
    attempts: options.attempts ?? DEFAULT_ATTEMPTS,
    // Jitter spreads the retries of a burst of jobs that failed together (an outage) over time.
    backoff: { type: 'exponential', delay: options.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS, jitter: 0.1 },
    removeOnComplete: options.removeOnComplete,
    removeOnFail: KEEP_DEAD_LETTERS,
  };
}

/** A payload that failed its queue's schema; `issues` is a readable list of what is wrong. */
export class InvalidPayloadError extends Error {
  constructor(readonly queueName: string, readonly issues: string) {
    super(`invalid ${queueName} payload: ${issues}`);
    this.name = 'InvalidPayloadError';
  }
}

/** Every payload carries its schema version, so a reader can tell old jobs from new ones. */
export interface VersionedPayload {
  readonly v: number;
}

/** Log fields a payload contributes to every log line of its job (ids and names, never secrets). */
export type LogBindings = Readonly<Record<string, string | number | undefined>>;

/** A queue's contract, as produced by `defineQueue`. */
export interface QueueContract<P extends VersionedPayload = VersionedPayload> {
  /** The BullMQ queue name, which is also Quay's `queue_name` metric label. */
  readonly name: string;
  /** The payload version producers write (`payload.v`). */
  readonly version: number;
  /** The schema of the current payload version. */
  readonly payload: z.ZodType<P>;
  readonly jobOptions: ContractJobOptions;
  /** The dedupe id (BullMQ job id) of a payload; validated to be a legal BullMQ custom id. */
  dedupeId(payload: P): string;
  /** Log fields for a payload (the repository or namespace it names). */
  logBindings(payload: P): LogBindings;
  /** Validates unknown data as this queue's payload; throws InvalidPayloadError. */
  parse(data: unknown): P;
}

/** The payload type of a contract. */
export type PayloadOf<C> = C extends QueueContract<infer P> ? P : never;

/** What a queue file declares. */
export interface QueueSpec<V extends number, S extends z.ZodType<VersionedPayload & { v: V }>> {
  readonly name: string;
  readonly version: V;
  /** Must include `v: z.literal(version)`; the type checker enforces it. Not `.strict()`. */
  readonly payload: S;
  readonly jobOptions: ContractJobOptions;
  readonly dedupeId: (payload: z.output<S>) => string;
  readonly logBindings?: (payload: z.output<S>) => LogBindings;
  /**
   * Readers of older payload versions, by version: each turns a job enqueued by an older release
   * into the current payload (validated after). During a rolling upgrade old producers keep
   * enqueuing the old version, and jobs already queued stay, so a version bump keeps its reader
   * until no such job can be left (a release later, and a week of dead letters).
   */
  readonly readOlder?: Readonly<Record<number, (old: Record<string, unknown>) => unknown>>;
}

// BullMQ 6 refuses custom ids that are integers or contain ':' (it keeps the three-part
// `a:b:c` shape only for legacy repeat jobs), so dedupe ids use '/', Quay's canonical-name
// separator: `repositorygc/42` where Quay wrote `repositorygc/devtable/42/`.
const DEDUPE_ID = /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/;

/** Throws unless `id` is a legal, non-numeric BullMQ custom job id without ':'. */
export function assertDedupeId(queueName: string, id: string): string {
  if (!DEDUPE_ID.test(id) || /^\d+$/.test(id)) {
    throw new InvalidPayloadError(queueName, `dedupe id ${JSON.stringify(id)} is not a valid job id`);
  }
  return id;
}

/** Declares a queue. The returned contract validates payloads and computes dedupe ids. */
export function defineQueue<const V extends number, S extends z.ZodType<VersionedPayload & { v: V }>>(
  spec: QueueSpec<V, S>,
): QueueContract<z.output<S>> {
  type P = z.output<S>;
  const schema = spec.payload as unknown as z.ZodType<P>;
  const parse = (data: unknown): P => {
    const older = typeof data === 'object' && data !== null && 'v' in data && data.v !== spec.version
      ? spec.readOlder?.[Number(data.v)] : undefined;
    const result = schema.safeParse(older ? older(data as Record<string, unknown>) : data);
    if (!result.success) throw new InvalidPayloadError(spec.name, z.prettifyError(result.error).replace(/\n/g, '; '));
    return result.data;
  };
  return Object.freeze({
    name: spec.name,
    version: spec.version,
    payload: schema,
    jobOptions: spec.jobOptions,
    dedupeId: (payload: P) => assertDedupeId(spec.name, spec.dedupeId(payload)),
    logBindings: spec.logBindings ?? (() => ({})),
    parse,
  });
}
