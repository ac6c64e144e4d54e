/**
 * Purges one repository marked for deletion, a slice of work per run: when the slice ends before
 * the purge does, the job defers itself (no attempt spent) and the next run continues where the
 * rows stop, which is also how a SIGKILLed run resumes.
 */
import type { RepositoryGcPayload } from '../../queues/repositorygc.ts';
import type { Config } from '../../shared/config/index.ts';
import { bindGcGauges, gcMetricsListener, setPruningMode } from '../../shared/db/gc/metrics.ts';
import { runRepositoryPurge } from '../../shared/db/gc/run.ts';
import { DeferError } from '../../shared/runtime/outcomes.ts';
import type { JobContext, WorkerServices } from '../../shared/runtime/worker.ts';
import type { DistributedStorage } from '../../shared/storage/distributed.ts';

/** What the repositorygcworker needs from its process. */
export interface RepositoryGcServices extends WorkerServices {
  readonly storage: DistributedStorage;
  /** For the pruning mode (managementState, GC-17). */
  readonly config: Config;
}

/** Work per run before the job defers itself, so one huge repository never hogs a worker slot. */
export const PURGE_SLICE_MS = 30_000;
/** How long a run waits when another job (a namespace purge) holds the repository. */
export const LOCK_BUSY_DELAY_MS = 5000;

/** Handles one `repositorygc` job. */
export async function handleRepositoryGc(payload: RepositoryGcPayload, ctx: JobContext<RepositoryGcServices>): Promise<void> {
  bindGcGauges(ctx.db);
  const pruneBlobs = ctx.config.imageRegistry.pruneBlobs;
  setPruningMode(pruneBlobs);
  const outcome = await runRepositoryPurge(ctx.db, ctx.storage, payload.repositoryId, {
    listener: gcMetricsListener, signal: ctx.signal, deadlineMs: Date.now() + PURGE_SLICE_MS, pruneBlobs,
  });
  if (!outcome.locked) throw new DeferError(LOCK_BUSY_DELAY_MS, 'another job holds this repository');
  if (ctx.signal.aborted) throw new Error('interrupted by shutdown; the next run continues');
  const { purge, drain } = outcome.value;
  if (!purge.done) {
    ctx.log.info({ drain }, 'repository purge continues in the next run');
    throw new DeferError(100, 'purge slice ended; continuing');
  }
  ctx.log.info({ drain }, 'repository purged');
}
