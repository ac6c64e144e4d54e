/**
 * How a worker is declared: `workers/<name>/index.ts` is one `defineWorker({...})` naming the
 * queue contract it consumes, its concurrency, its schedule, its feature gate and its handler.
 * The handler is a plain async function of (payload, ctx): it imports neither BullMQ nor config,
 * and gets everything it needs through `ctx`.
 *
 * Glossary
 * - worker: one kind of background process (`gcworker`), the `worker` metric label.
 * - handler: the worker's function for one job; ends in one of the outcomes of outcomes.ts.
 * - services: what the process hands every handler (`db`, and e.g. `storage`), typed per worker.
 * - schedule: a periodic trigger (BullMQ job scheduler) that fires once per tick fleet-wide.
 * - gate: the config-derived decision whether this worker runs at all.
 * - checkpoint: state a long job saves so that its next attempt resumes instead of restarting.
 * - hand back: returning an interrupted job to its queue without spending an attempt.
 */
import type { QueueContract, VersionedPayload } from '../../queues/contract.ts';
import type { Config } from '../config/index.ts';
import type { Pool } from '../db/pool.ts';
import type { Logger } from './logger.ts';
import type { EnqueueOptions } from './producer.ts';

/** What every handler gets from its process. Workers extend it with their own services. */
export interface WorkerServices {
  readonly db: Pool;
}

/** The job a handler is running. */
export interface JobInfo {
  /** The BullMQ job id: the dedupe id, or `repeat:...` for a scheduler tick. */
  readonly id: string;
  readonly queueName: string;
  /** 1 on the first run; deferrals, rate limits and hand-backs do not advance it. */
  readonly attempt: number;
  /** Failed attempts so far. */
  readonly attemptsMade: number;
  /** Total attempts the contract allows. */
  readonly maxAttempts: number;
  /** The schedule id when a scheduler tick created this job. */
  readonly scheduleId: string | undefined;
  /** When the job was added to its queue (epoch ms), for event-to-completion latencies. */
  readonly createdAtMs?: number;
}

/** The helpers the runtime hands a handler beside its services. */
/** A job not finished yet: its dedupe id, and when it started running (absent while it waits). */
export interface UnfinishedJob {
  readonly id: string;
  readonly startedAtMs?: number;
}

export interface JobTools<K = unknown> {
  /** Pino child logger carrying worker, jobId, attempt and the payload's repository/namespace. */
  readonly log: Logger;
  /** Fires when the process shuts down; stop at the next safe point and throw (or return). */
  readonly signal: AbortSignal;
  readonly job: JobInfo;
  /** The last checkpoint an earlier attempt of this job saved; undefined on a fresh job. */
  readonly resumeFrom: K | undefined;
  /** Enqueues follow-up work directly (not transactionally); returns its dedupe id. */
  enqueue<Q extends VersionedPayload>(queue: QueueContract<Q>, payload: Q, options?: EnqueueOptions): Promise<string>;
  /**
   * The jobs of `queue` not finished yet: waiting or delayed (no start time) and running (with
   * the ms they started at). For a fan-out that should not duplicate work already queued.
   */
  unfinishedJobs(queue: QueueContract<VersionedPayload>): Promise<UnfinishedJob[]>;
  /** Reports progress for operators (BullMQ job progress); not used for resuming. */
  progress(progress: number | Record<string, unknown>): Promise<void>;
  /** Persists JSON-serializable resume state with the job, so a retried or redelivered run continues. */
  checkpoint(state: K): Promise<void>;
}

/** What a worker's `onStart` gets: its services, its logger, direct enqueueing, and removal of a retired schedule. */
export type StartContext<S extends WorkerServices = WorkerServices> = Readonly<S> & {
  readonly log: Logger;
  enqueue: JobTools['enqueue'];
  /** Removes the scheduler `id` from the worker's queue (a schedule an earlier version created); false if absent. */
  removeSchedule(id: string): Promise<boolean>;
};

/** A handler's second argument: its services plus the job tools. */
export type JobContext<S extends WorkerServices = WorkerServices, K = unknown> = Readonly<S> & JobTools<K>;

/** A worker's handler: resolves when the job is done, throws an outcome error otherwise. */
export type JobHandler<P, S extends WorkerServices = WorkerServices, K = unknown> =
  (payload: P, ctx: JobContext<S, K>) => Promise<void>;

/** A periodic trigger: a job with a fixed payload every N seconds or on a cron pattern. */
export type ScheduleSpec<P> =
  | { readonly id: string; readonly everySeconds: number; readonly payload: P }
  | { readonly id: string; readonly cron: string; readonly timezone?: string; readonly payload: P };

/** Whether a worker runs, and why (logged either way). */
export interface GateDecision {
  readonly enabled: boolean;
  readonly reason: string;
}

/** A worker declaration. */
export interface WorkerDefinition<P extends VersionedPayload, S extends WorkerServices = WorkerServices, K = unknown> {
  /** The worker's name: the CLI's `worker <name>`, the `worker` metric label, `process_name`. */
  readonly name: string;
  readonly queue: QueueContract<P>;
  /** Jobs handled at once in one process. */
  readonly concurrency: number;
  /** Periodic triggers, fixed or derived from config (e.g. GARBAGE_COLLECTION_FREQUENCY). */
  readonly schedule?: readonly ScheduleSpec<P>[] | ((config: Config) => readonly ScheduleSpec<P>[]);
  /** Feature gate; absent means always on. */
  readonly gate?: (config: Config) => GateDecision;
  /**
   * Keeps running under managementState Removed (the GC workers, which then prune metadata only,
   * as OpenShift's pruner does); every other worker stops (OPS-1).
   */
  readonly runsWhenRemoved?: boolean;
  /** How long a job's lease lasts before another worker may take it over; renewed while it runs. */
  readonly lockDurationMs?: number;
  /**
   * Set when the handler calls an upstream that rate-limits (and may throw RateLimitedError): the
   * worker then checks the queue's rate-limit key on every fetch (a GET and an INCR in Redis per
   * job) so one RateLimitedError pauses the queue for every replica. Without it, a
   * RateLimitedError only re-delays its own job, like a DeferError.
   */
  readonly pausesOnRateLimit?: boolean;
  /**
   * Runs once when the worker starts, before it takes jobs (e.g. a reconcile that re-creates jobs
   * Redis lost). A failure is logged and the worker starts anyway.
   */
  onStart?(ctx: StartContext<S>): Promise<void>;
  /**
   * The handler. Declared as a method so that a table of workers with different payloads and
   * services (workers/index.ts) type-checks against one definition type.
   */
  handler(payload: P, ctx: JobContext<S, K>): Promise<void>;
}

const WORKER_NAME = /^[a-z][a-z0-9_-]*$/;

/** Checks and freezes a worker declaration; throws on a bad name or concurrency. */
export function defineWorker<P extends VersionedPayload, S extends WorkerServices = WorkerServices, K = unknown>(
  definition: WorkerDefinition<P, S, K>,
): WorkerDefinition<P, S, K> {
  if (!WORKER_NAME.test(definition.name)) throw new Error(`worker name ${JSON.stringify(definition.name)} must be lowercase letters, digits, '-' or '_'`);
  if (!Number.isInteger(definition.concurrency) || definition.concurrency < 1) {
    throw new Error(`worker ${definition.name}: concurrency must be a positive integer`);
  }
  return Object.freeze({ ...definition });
}

/** The schedules of a definition under `config`. */
export function schedulesOf<P extends VersionedPayload, S extends WorkerServices, K>(
  definition: WorkerDefinition<P, S, K>, config: Config,
): readonly ScheduleSpec<P>[] {
  const schedule = definition.schedule;
  return typeof schedule === 'function' ? schedule(config) : schedule ?? [];
}

/** Whether `definition` runs under `config`: managementState Removed first (OPS-1), then its feature gate. */
export function gateOf(definition: { readonly gate?: (config: Config) => GateDecision; readonly runsWhenRemoved?: boolean }, config: Config): GateDecision {
  if (config.imageRegistry.managementState === 'Removed' && !definition.runsWhenRemoved) {
    return { enabled: false, reason: 'managementState is Removed: the image registry is removed and only garbage collection of metadata runs' };
  }
  return definition.gate?.(config) ?? { enabled: true, reason: 'no feature gate' };
}
