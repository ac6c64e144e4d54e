/**
 * The `ctx` a handler receives. Built once per job on the hot path, so it is a class instance
 * whose services live on a per-worker prototype (no copying per job) and whose logger and job
 * info are created only when the handler first reads them.
 */
import type { Job } from 'bullmq';
import type { QueueContract, VersionedPayload } from '../../queues/contract.ts';
import type { Logger } from './logger.ts';
import type { EnqueueOptions, Producer } from './producer.ts';
import type { JobInfo, JobTools, UnfinishedJob, WorkerServices } from './worker.ts';

/** Key under which a job's checkpoint is stored beside its payload in the BullMQ job data. */
export const CHECKPOINT_KEY = '_checkpoint';

/** What a context needs from its worker. */
export interface ContextHost {
  /** The worker-level logger (worker and queue_name bound). */
  readonly log: Logger;
  readonly contract: QueueContract<VersionedPayload>;
  readonly producer: Producer;
  /** Set when shutdown aborts running jobs; a signal created later starts out aborted. */
  readonly abortReason: Error | undefined;
}

/** The part of a running job's record the context shares with shutdown: its abort controller. */
export interface AbortableJob {
  controller?: AbortController;
}

/** Names a service may not take, because the job tools use them. */
const TOOL_NAMES = new Set(['log', 'signal', 'job', 'resumeFrom', 'enqueue', 'unfinishedJobs', 'progress', 'checkpoint']);

/** The per-job logger: worker bindings plus jobId, attempt and what the payload names. */
export function jobLogger(host: ContextHost, job: Job, payload: VersionedPayload | undefined): Logger {
  const bindings = payload ? host.contract.logBindings(payload) : {};
  return host.log.child({ jobId: job.id, attempt: job.attemptsMade + 1, ...bindings });
}

/** The job tools; services are added by `contextClass`. */
export class JobContextBase<K = unknown> implements JobTools<K> {
  private logger: Logger | undefined = undefined;
  private info: JobInfo | undefined = undefined;

  constructor(
    private readonly host: ContextHost,
    private readonly bullJob: Job,
    private readonly running: AbortableJob,
    private readonly payload: VersionedPayload,
  ) {}

  // Created on first read: an AbortController costs more than the rest of a no-op job's runtime
  // work, and most handlers that never block do not look at it.
  get signal(): AbortSignal {
    let controller = this.running.controller;
    if (!controller) {
      controller = this.running.controller = new AbortController();
      if (this.host.abortReason) controller.abort(this.host.abortReason);
    }
    return controller.signal;
  }

  get log(): Logger {
    return (this.logger ??= jobLogger(this.host, this.bullJob, this.payload));
  }

  get job(): JobInfo {
    const job = this.bullJob;
    return (this.info ??= {
      id: job.id ?? '',
      queueName: job.queueName,
      attempt: job.attemptsMade + 1,
      attemptsMade: job.attemptsMade,
      maxAttempts: job.opts.attempts ?? 1,
      scheduleId: job.repeatJobKey,
      createdAtMs: job.timestamp,
    });
  }

  get resumeFrom(): K | undefined {
    return (this.bullJob.data as Record<string, unknown> | undefined)?.[CHECKPOINT_KEY] as K | undefined;
  }

  enqueue<Q extends VersionedPayload>(queue: QueueContract<Q>, payload: Q, options?: EnqueueOptions): Promise<string> {
    return this.host.producer.enqueue(queue, payload, options);
  }

  async unfinishedJobs(queue: QueueContract<VersionedPayload>): Promise<UnfinishedJob[]> {
    const handle = this.host.producer.queue(queue.name);
    // Ids alone for the waiting ones (one range read per state); whole jobs only for the running
    // ones, whose start time is in the job hash (at most the workers' concurrency of them).
    const [waiting, active] = await Promise.all([
      handle.getRanges(['waiting', 'prioritized', 'delayed', 'waiting-children'], 0, -1),
      handle.getJobs(['active'], 0, -1),
    ]);
    return [
      ...waiting.map((id) => ({ id })),
      ...active.filter((job) => job.id !== undefined).map((job) => ({ id: job.id!, startedAtMs: job.processedOn })),
    ];
  }

  progress(progress: number | Record<string, unknown>): Promise<void> {
    return this.bullJob.updateProgress(progress);
  }

  checkpoint(state: K): Promise<void> {
    // The payload stays as it was enqueued; the checkpoint rides beside it and is stripped by the
    // payload schema on the next attempt (schemas are not strict), then read back as resumeFrom.
    return this.bullJob.updateData({ ...(this.bullJob.data as object), [CHECKPOINT_KEY]: state });
  }
}

/** The constructor of a worker's context: JobContextBase with `services` on its prototype. */
export type ContextClass = new (host: ContextHost, job: Job, running: AbortableJob, payload: VersionedPayload) => JobContextBase;

/** Builds the context class of one worker; throws if a service name collides with a tool. */
export function contextClass(services: WorkerServices): ContextClass {
  class WorkerJobContext extends JobContextBase {}
  for (const [key, value] of Object.entries(services)) {
    if (TOOL_NAMES.has(key)) throw new Error(`service name ${JSON.stringify(key)} is reserved for the job tools`);
    Object.defineProperty(WorkerJobContext.prototype, key, { value, enumerable: true });
  }
  return WorkerJobContext;
}
