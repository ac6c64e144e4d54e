/**
 * The gcworker's two jobs: collect one repository (event-driven: a tag left the time machine, a
 * lease expired, a sweep found garbage), and the sweep tick (no repository) that finds what the
 * events missed and enqueues one job per repository.
 */
import { garbagecollection, parseGarbageCollectionJobId, type GarbageCollectionPayload } from '../../queues/garbagecollection.ts';
import { bindGcGauges, gcIterations, gcMetricsListener, setPruningMode } from '../../shared/db/gc/metrics.ts';
import { runRepositoryGc, runSweep } from '../../shared/db/gc/run.ts';
import { DeferError } from '../../shared/runtime/outcomes.ts';
import type { JobContext, WorkerServices } from '../../shared/runtime/worker.ts';
import { mapBounded } from '../../shared/storage/concurrency.ts';
import type { DistributedStorage } from '../../shared/storage/distributed.ts';
import type { Config } from '../../shared/config/index.ts';

/** What the gcworker needs from its process. */
export interface GcServices extends WorkerServices {
  readonly storage: DistributedStorage;
  /** For GARBAGE_COLLECTION_FREQUENCY, which numbers the sweep's ticks. */
  readonly config: Config;
}

/** How long a job waits when another job holds its repository (it will find little left). */
export const LOCK_BUSY_DELAY_MS = 2000;
/** When a push held some candidates, collect the repository again this much later. */
export const BUSY_RETRY_DELAY_S = 10;
/** Sweep jobs of one repository within this many seconds share a dedupe id (no pile-up). */
export const SWEEP_BUCKET_S = 300;

type Ctx = JobContext<GcServices>;

/** Handles one `garbagecollection` job. */
export async function handleGarbageCollection(payload: GarbageCollectionPayload, ctx: Ctx): Promise<void> {
  bindGcGauges(ctx.db);
  setPruningMode(ctx.config.imageRegistry.pruneBlobs);
  if (payload.repositoryId === undefined) return sweep(ctx);
  return collect(ctx, payload.repositoryId, payload);
}

async function collect(ctx: Ctx, repositoryId: number, payload: GarbageCollectionPayload): Promise<void> {
  const outcome = await runRepositoryGc(ctx.db, ctx.storage, repositoryId, { listener: gcMetricsListener, signal: ctx.signal, pruneBlobs: ctx.config.imageRegistry.pruneBlobs });
  if (!outcome.locked) throw new DeferError(LOCK_BUSY_DELAY_MS, 'another job is collecting this repository');
  if (ctx.signal.aborted) throw new Error('interrupted by shutdown after committed batches; the next run continues');
  const { collect: result, drain } = outcome.value;
  gcIterations.inc();
  ctx.log.info({ ...result, pendingIds: result.pendingIds.length, drain }, result.found ? 'repository collected' : 'repository gone or being purged');
  if (result.busy > 0 || drain.busy > 0) {
    // Pushes held some candidates; their leases usually protect them, else this run catches them.
    const dueAtS = Math.ceil(Date.now() / 1000) + BUSY_RETRY_DELAY_S;
    await ctx.enqueue(garbagecollection, { ...payload, v: 1, reason: 'sweep', repositoryId, dueAtS }, { runAt: new Date(dueAtS * 1000) });
  }
}

async function sweep(ctx: Ctx): Promise<void> {
  const nowMs = Date.now();
  // Scheduler ticks are aligned to the period, so consecutive ticks get consecutive numbers and
  // the table scans' id windows walk each table in turn.
  const tick = Math.floor(nowMs / (Math.max(1, ctx.config.quay.GARBAGE_COLLECTION_FREQUENCY) * 1000));
  const result = await runSweep(ctx.db, ctx.storage, { nowMs, tick, listener: gcMetricsListener, signal: ctx.signal, pruneBlobs: ctx.config.imageRegistry.pruneBlobs });
  const dueAtS = Math.floor(nowMs / 1000 / SWEEP_BUCKET_S) * SWEEP_BUCKET_S;
  const covered = await coveredRepositories(ctx, nowMs, ctx.config.quay.GARBAGE_COLLECTION_FREQUENCY * 1000);
  const repositoryIds = result.repositoryIds.filter((id) => !covered.has(id));
  await mapBounded(repositoryIds, 16, (repositoryId) =>
    ctx.enqueue(garbagecollection, { v: 1, reason: 'sweep', repositoryId, dueAtS }));
  ctx.log.info({ repositories: repositoryIds.length, covered: result.repositoryIds.length - repositoryIds.length, orphanBlobs: result.blobs, drain: result.drain, uploadIntents: result.intents }, 'gc sweep done');
}

/**
 * Repositories a job not finished yet will collect everything the sweep found in (all that was
 * due at `nowMs`): one still waiting and due before the next tick (it runs, and reads the
 * repository, after `nowMs`), or one that started running at or after `nowMs`. Without this the
 * sweep enqueued a second job for each repository whose event-driven job was still queued, which
 * then found nothing (at the GC bench's start: 25-29 such jobs of 5 round trips in the measured
 * window). A job that fails is no longer unfinished, so the next tick enqueues again: the safety
 * net holds.
 */
async function coveredRepositories(ctx: Ctx, nowMs: number, periodMs: number): Promise<Set<number>> {
  const covered = new Set<number>();
  for (const job of await ctx.unfinishedJobs(garbagecollection)) {
    const target = parseGarbageCollectionJobId(job.id);
    if (!target) continue;
    const covers = job.startedAtMs === undefined ? target.dueAtS * 1000 <= nowMs + periodMs : job.startedAtMs >= nowMs;
    if (covers) covered.add(target.repositoryId);
  }
  return covered;
}
