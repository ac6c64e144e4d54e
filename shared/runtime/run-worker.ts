/**
 * Runs one worker definition in this process: evaluates its gate, upserts its schedules, starts a
 * BullMQ Worker around its handler, and stops it gracefully.
 *
 * Shutdown (`stop(deadlineMs)`; the caller wires SIGTERM to it, then closes Postgres and HTTP):
 * 1. stop fetching jobs;
 * 2. let running jobs finish until `deadlineMs - abortGraceMs`;
 * 3. fire their abort signals; a handler that honours it is handed back at once (no attempt spent);
 * 4. at the deadline, hand back whatever still runs (its later result is ignored);
 * 5. close the BullMQ worker and every Redis connection.
 * A process killed without this (SIGKILL, OOM) loses its job leases instead; BullMQ's stalled
 * check on another worker redelivers those jobs after `lockDurationMs`.
 */
import { Worker } from 'bullmq';
import type { VersionedPayload } from '../../queues/contract.ts';
import type { Config } from '../config/index.ts';
import type { Logger } from './logger.ts';
import { createProcessor } from './processor.ts';
import { createProducer, type Producer } from './producer.ts';
import { bullOptions, type RedisSettings } from './redis.ts';
import { keepSchedules, type ScheduleKeeper } from './schedule-keeper.ts';
import { upsertSchedules } from './schedules.ts';
import { WorkerRuntime } from './worker-runtime.ts';
import { gateOf, schedulesOf, type JobHandler, type WorkerDefinition, type WorkerServices } from './worker.ts';

/** BullMQ lease settings; production keeps the defaults, tests shorten them. */
export interface LeaseOptions {
  /** Lease length; renewed every half of it while the handler runs. Default 30 s. */
  readonly lockDurationMs?: number;
  /** How often this worker looks for jobs whose lease expired. Default 30 s. */
  readonly stalledIntervalMs?: number;
  /** Lease expiries a job survives before it is dead-lettered (a job that kills its worker). Default 3. */
  readonly maxStalledCount?: number;
}

/** What `runWorker` needs from the process. */
export interface RunWorkerDeps<S extends WorkerServices> {
  readonly config: Config;
  readonly services: S;
  readonly redis: RedisSettings;
  /** The process logger; the worker binds `worker` and `queue_name` to it. */
  readonly log: Logger;
  /** Overrides the definition's concurrency for this process. */
  readonly concurrency?: number;
  readonly lease?: LeaseOptions;
}

/** A worker whose gate is off: nothing was started; the process should exit 0. */
export interface DisabledWorker {
  readonly disabled: true;
  readonly reason: string;
}

/** A started worker. */
export interface RunningWorker {
  readonly disabled: false;
  readonly name: string;
  /**
   * Stops gracefully within `deadlineMs` (see the module comment). `abortGraceMs` is how long
   * before the deadline the abort signals fire (default a fifth of the deadline, at most 5 s).
   * Repeat-safe: later calls return the first call's promise.
   */
  stop(deadlineMs: number, options?: { abortGraceMs?: number }): Promise<void>;
}

// BullMQ's rate-limit key only pauses workers that have a limiter, so a worker that pauses on rate
// limits gets one that never limits by itself; RateLimitedError then pauses the queue.
const NEVER_LIMITING = { max: Number.MAX_SAFE_INTEGER - 1, duration: 1000 };

/** How long shutdown waits for Redis to take handed-back jobs before closing anyway. */
const HAND_BACK_TIMEOUT_MS = 2000;

/**
 * Runs `definition` until `stop`. Resolves once the worker is ready, or with `{disabled: true}`
 * (after logging the reason, without opening any connection) when its gate is off.
 */
export async function runWorker<P extends VersionedPayload, S extends WorkerServices, K>(
  definition: WorkerDefinition<P, S, K>, deps: RunWorkerDeps<S>,
): Promise<RunningWorker | DisabledWorker> {
  const log = deps.log.child({ worker: definition.name, queue_name: definition.queue.name });
  const gate = gateOf(definition, deps.config);
  if (!gate.enabled) {
    log.info({ reason: gate.reason }, 'worker disabled; exiting');
    return { disabled: true, reason: gate.reason };
  }
  const schedules = schedulesOf(definition, deps.config).map((s) => ({ ...s, payload: definition.queue.parse(s.payload) }));
  const { release: releaseConnection, ...options } = bullOptions(deps.redis, definition.queue.name);
  const producer = createProducer(deps.redis);
  const queue = producer.queue(definition.queue.name);
  await upsertSchedules(queue, definition.queue, schedules);
  // A flushed or restarted Redis loses the schedulers; the keeper puts them back.
  const keeper = keepSchedules(queue, definition.queue, schedules, log);
  if (definition.onStart) {
    await definition.onStart({
      ...deps.services, log, enqueue: (contract, payload, enqueueOptions) => producer.enqueue(contract, payload, enqueueOptions),
      removeSchedule: (id) => queue.removeJobScheduler(id),
    }).catch((error: unknown) => log.warn({ err: error }, 'worker start step failed; starting anyway'));
  }

  const runtime = new WorkerRuntime(definition.name, definition.queue, definition.handler as JobHandler<VersionedPayload, WorkerServices, unknown>,
    log, producer, queue, deps.services, definition.pausesOnRateLimit === true);
  const concurrency = deps.concurrency ?? definition.concurrency;
  const worker = new Worker(definition.queue.name, createProcessor(runtime), {
    ...options,
    name: definition.name,
    autorun: false,
    concurrency,
    ...(definition.pausesOnRateLimit ? { limiter: NEVER_LIMITING } : {}),
    lockDuration: deps.lease?.lockDurationMs ?? definition.lockDurationMs ?? 30_000,
    stalledInterval: deps.lease?.stalledIntervalMs ?? 30_000,
    maxStalledCount: deps.lease?.maxStalledCount ?? 3,
  });
  worker.on('error', (error) => log.error({ err: error }, 'worker error'));
  worker.on('stalled', (jobId) => log.warn({ jobId }, 'job lease expired; redelivering it'));
  // run() settles only when the main loop ends; a handler that ignores its abort keeps it pending,
  // so shutdown does not wait on it.
  void worker.run().catch((error: unknown) => log.error({ err: error }, 'worker stopped on an error'));
  await worker.waitUntilReady();
  log.info({ concurrency, schedules: schedules.map((s) => s.id), gate: gate.reason }, 'worker started');

  let stopping: Promise<void> | undefined;
  return {
    disabled: false,
    name: definition.name,
    stop(deadlineMs, stopOptions) {
      stopping ??= stopWorker({ worker, runtime, producer, log, releaseConnection, keeper }, deadlineMs, stopOptions?.abortGraceMs);
      return stopping;
    },
  };
}

interface StopTarget {
  readonly worker: Worker;
  readonly runtime: WorkerRuntime;
  readonly producer: Producer;
  readonly log: Logger;
  readonly releaseConnection: () => void;
  readonly keeper: ScheduleKeeper;
}

async function stopWorker(target: StopTarget, deadlineMs: number, abortGraceMs?: number): Promise<void> {
  const { worker, runtime, producer, log, releaseConnection, keeper } = target;
  keeper.stop();
  const deadline = Date.now() + deadlineMs;
  const grace = abortGraceMs ?? Math.min(5000, deadlineMs / 5);
  runtime.stopping = true;
  log.info({ deadlineMs, active: runtime.active.size }, 'worker stopping');
  await worker.pause(true);
  await runtime.waitUntilIdle(deadline - grace);
  if (runtime.active.size > 0) {
    log.warn({ active: runtime.active.size }, 'deadline near; aborting running jobs');
    runtime.abortAll(new Error('worker shutting down'));
    await runtime.waitUntilIdle(deadline);
  }
  if (runtime.active.size > 0) {
    const count = runtime.active.size;
    // Bounded: with Redis unreachable the moves would wait for it; the leases then expire instead.
    await Promise.race([runtime.handBackAll(), new Promise((resolve) => setTimeout(resolve, HAND_BACK_TIMEOUT_MS).unref())]);
    log.warn({ handedBack: count }, 'jobs ignored their abort signal; handed back to the queue');
  }
  await worker.close(true);
  releaseConnection();
  await producer.close();
  runtime.releaseMetrics();
  log.info('worker stopped');
}
