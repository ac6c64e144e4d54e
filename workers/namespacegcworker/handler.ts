/**
 * Purges one namespace marked for deletion, a slice per run (see the repositorygcworker): its
 * repositories one by one under their own locks, then the namespace itself.
 */
import type { NamespaceGcPayload } from '../../queues/namespacegc.ts';
import type { Config } from '../../shared/config/index.ts';
import { bindGcGauges, gcMetricsListener, setPruningMode } from '../../shared/db/gc/metrics.ts';
import { runNamespacePurge } from '../../shared/db/gc/run.ts';
import { DeferError } from '../../shared/runtime/outcomes.ts';
import type { JobContext, WorkerServices } from '../../shared/runtime/worker.ts';
import type { DistributedStorage } from '../../shared/storage/distributed.ts';

/** What the namespacegcworker needs from its process. */
export interface NamespaceGcServices extends WorkerServices {
  readonly storage: DistributedStorage;
  /** For the pruning mode (managementState, GC-17). */
  readonly config: Config;
}

/** Work per run before the job defers itself. */
export const PURGE_SLICE_MS = 30_000;
/** How long a run waits when a repository or the namespace is held by another job. */
export const BUSY_DELAY_MS = 5000;

/** Handles one `namespacegc` job. */
export async function handleNamespaceGc(payload: NamespaceGcPayload, ctx: JobContext<NamespaceGcServices>): Promise<void> {
  bindGcGauges(ctx.db);
  const deadlineMs = Date.now() + PURGE_SLICE_MS;
  const pruneBlobs = ctx.config.imageRegistry.pruneBlobs;
  setPruningMode(pruneBlobs);
  const outcome = await runNamespacePurge(ctx.db, ctx.storage, payload.namespaceId, { listener: gcMetricsListener, signal: ctx.signal, deadlineMs, pruneBlobs });
  if (!outcome.locked) throw new DeferError(BUSY_DELAY_MS, 'another job is purging this namespace');
  if (ctx.signal.aborted) throw new Error('interrupted by shutdown; the next run continues');
  const { purge, drain } = outcome.value;
  if (!purge.done) {
    ctx.log.info({ drain }, 'namespace purge continues in the next run');
    // Out of time: continue at once; otherwise a repository was busy (its own purge): wait a bit.
    throw new DeferError(Date.now() >= deadlineMs ? 100 : BUSY_DELAY_MS, 'namespace purge not finished');
  }
  ctx.log.info({ drain }, 'namespace purged');
}
