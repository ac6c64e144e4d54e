/**
 * The state one running worker shares between its job processor and its shutdown: the jobs in
 * flight (with their lock tokens, so shutdown can hand them back), and the pre-built metric
 * children the hot path increments without label lookups.
 */
import type { Job, Queue } from 'bullmq';
import type { QueueContract, VersionedPayload } from '../../queues/contract.ts';
import { BufferedCounter, type HistogramSeries } from './hot-metrics.ts';
import { contextClass, type AbortableJob, type ContextClass, type ContextHost, type JobContextBase } from './job-context.ts';
import type { Logger } from './logger.ts';
import { JOB_OUTCOMES, type JobOutcome } from './outcomes.ts';
import type { Producer } from './producer.ts';
import {
  queueItemGets, workerJobDuration, workerJobsTotal, workerOperationDuration, workerOperationInProgress,
} from './runtime-metrics.ts';
import type { JobHandler, WorkerServices } from './worker.ts';

/** A job this process is running. */
export interface ActiveJob extends AbortableJob {
  readonly job: Job;
  readonly token: string;
  /** Set once shutdown returned the job to the queue; the handler's result is then ignored. */
  handedBack: boolean;
  ctx?: JobContextBase;
}

/** Everything the processor and shutdown of one worker share. */
export class WorkerRuntime implements ContextHost {
  /** True from the moment `stop` begins; an abort then means "hand the job back". */
  stopping = false;
  /** Set by `abortAll`; signals created afterwards start out aborted. */
  abortReason: Error | undefined;
  readonly active = new Map<string, ActiveJob>();
  readonly Context: ContextClass;
  private readonly outcomes: Record<JobOutcome, BufferedCounter>;
  private readonly duration: HistogramSeries;
  private readonly gets: BufferedCounter;
  private idleWaiter: (() => void) | undefined;

  constructor(
    readonly workerName: string,
    readonly contract: QueueContract<VersionedPayload>,
    readonly handler: JobHandler<VersionedPayload, WorkerServices, unknown>,
    readonly log: Logger,
    readonly producer: Producer,
    /** The consumed queue's handle, used to rate-limit it. */
    readonly queue: Queue,
    services: WorkerServices,
    /** Whether a RateLimitedError pauses the whole queue (the worker has a limiter) or defers one job. */
    readonly pausesOnRateLimit: boolean,
  ) {
    this.Context = contextClass(services);
    const labels = { worker: workerName, queue_name: contract.name };
    this.outcomes = Object.fromEntries(JOB_OUTCOMES.map((outcome) => [outcome, new BufferedCounter(workerJobsTotal, { ...labels, outcome })])) as Record<JobOutcome, BufferedCounter>;
    this.duration = workerJobDuration.child(labels);
    this.gets = new BufferedCounter(queueItemGets, { queue_name: contract.name, availability: 'acquired' });
  }

  /** Records that `job` started under `token`. */
  track(job: Job, token: string): ActiveJob {
    const entry: ActiveJob = { job, token, handedBack: false };
    this.active.set(job.id!, entry);
    this.gets.inc();
    if (job.repeatJobKey) workerOperationInProgress.labels({ worker: this.workerName, operation: job.repeatJobKey }).inc();
    return entry;
  }

  /** Records how `job` ended and wakes a shutdown waiting for the last job. */
  finish(job: Job, outcome: JobOutcome, startedAtMs: number): void {
    this.active.delete(job.id!);
    const seconds = (performance.now() - startedAtMs) / 1000;
    this.outcomes[outcome].inc();
    this.duration.observe(seconds);
    if (job.repeatJobKey) {
      const labels = { worker: this.workerName, operation: job.repeatJobKey };
      workerOperationInProgress.labels(labels).dec();
      workerOperationDuration.labels(labels).observe(seconds);
    }
    if (this.idleWaiter && this.active.size === 0) this.idleWaiter();
  }

  /** Resolves when no job is running, or at `untilMs` (epoch ms), whichever comes first. */
  waitUntilIdle(untilMs: number): Promise<void> {
    if (this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.idleWaiter = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, untilMs - Date.now()));
      this.idleWaiter = done;
    });
  }

  /** Hands the buffered job counts to prom-client for good (the worker stopped). */
  releaseMetrics(): void {
    for (const counter of Object.values(this.outcomes)) counter.release();
    this.gets.release();
  }

  /** Fires the abort signal of every running job (and of any a handler asks for later). */
  abortAll(reason: Error): void {
    this.abortReason = reason;
    for (const entry of this.active.values()) entry.controller?.abort(reason);
  }

  /** Whether `entry`'s handler was asked to stop by shutdown. */
  abortedByShutdown(entry: ActiveJob): boolean {
    return this.stopping && entry.controller?.signal.aborted === true;
  }

  /**
   * Returns every running job to its queue at once (delayed until now, so any worker may take it)
   * without spending an attempt. The handlers may still be running; their results are ignored.
   */
  async handBackAll(): Promise<number> {
    const entries = [...this.active.values()].filter((entry) => !entry.handedBack);
    await Promise.all(entries.map(async (entry) => {
      entry.handedBack = true;
      try {
        await entry.job.moveToDelayed(Date.now(), entry.token);
      } catch (error) {
        // The lock is gone (another worker took the job over): nothing left to hand back.
        this.log.warn({ err: error, jobId: entry.job.id }, 'could not hand back job; its lease will expire instead');
      }
    }));
    return entries.length;
  }
}
