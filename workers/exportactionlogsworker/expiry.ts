/**
 * Removing exported files past their retention (Quay never removes them, although its e-mail says
 * the link "will remain accessible for N seconds before being deleted"). A success's file is kept
 * `EXPORT_ACTION_LOGS_SECONDS`, the lifetime of its link; a failed attempt's leftover is due at
 * once; a claimed file whose attempt died is due when its hold ends.
 *
 * Every change of a file's expiry (`claimExportFile`, `finishExport`) writes a delayed removal job
 * for that moment through the outbox, in the same transaction: the job lives in Redis, survives
 * restarts of the worker, and is the only thing that wakes it, so a deployment scaled to zero for
 * want of exports stays at zero until an export or a removal is due (a due delayed job counts in
 * `quay_queue_items_available_unlocked`). The reconcile at worker start re-creates the jobs Redis
 * lost (flushed, restarted without persistence) from `logexport`.
 */
import type { QueueContract, VersionedPayload } from '../../queues/contract.ts';
import { exportactionlogs, type ExportFileRemovalPayload } from '../../queues/exportactionlogs.ts';
import type { Queryable } from '../../shared/db/pool.ts';
import type { Logger } from '../../shared/runtime/logger.ts';
import { DeferError, PermanentFailureError } from '../../shared/runtime/outcomes.ts';
import type { EnqueueOptions } from '../../shared/runtime/producer.ts';
import type { JobContext } from '../../shared/runtime/worker.ts';
import type { ExportServices } from './handler.ts';
import { exportedFilesRemoved } from './metrics.ts';
import { markFileRemoved, pendingFile, pendingFiles, removalPayload } from './rows.ts';

/** The scheduler id of the retired 5-minute sweep, removed from Redis when the worker starts. */
export const RETIRED_SWEEP_SCHEDULE = 'exportactionlogs-expiry';

/** Rows read per page by the reconcile. */
export const RECONCILE_PAGE = 500;

/**
 * Removes one export's file if its expiry has passed (idempotent: a removed file, or an export
 * without one, is done). Not yet due (the expiry moved on): deferred to the new expiry. In a
 * location this process does not configure: dead-lettered, and the reconcile of a worker that
 * configures it revives it. A failed storage delete is retried with the queue's backoff.
 */
export async function removeExportFile(payload: ExportFileRemovalPayload, ctx: JobContext<ExportServices>): Promise<void> {
  const file = await pendingFile(ctx.db, payload.removeExportFile);
  if (!file) return;
  const waitMs = file.expires_at.getTime() - Date.now();
  if (waitMs > 0) throw new DeferError(waitMs, 'export file not yet due for removal (its expiry moved)');
  if (!ctx.storage.locations.includes(file.location)) {
    throw new PermanentFailureError(`export file in location ${file.location}, which this process does not configure`);
  }
  await ctx.storage.store(file.location).delete(file.result_key);
  if (await markFileRemoved(ctx.db, file.export_id)) {
    exportedFilesRemoved.inc();
    ctx.log.info({ exportId: file.export_id, location: file.location }, 'expired action log export removed');
  }
}

/** Enqueues directly (not transactionally): the job tools' or the producer's `enqueue`. */
export type Enqueue = <P extends VersionedPayload>(queue: QueueContract<P>, payload: P, options?: EnqueueOptions) => Promise<string>;

/**
 * Re-creates the removal job of every file not yet removed in `locations`, at its expiry. A job
 * still in Redis under that id (delayed, or completed) makes the enqueue a no-op; a dead-lettered
 * one is replaced. Returns how many files it went through.
 */
export async function reconcileRemovals(db: Queryable, locations: readonly string[], enqueue: Enqueue, log: Logger): Promise<number> {
  let after: string | null = null;
  let seen = 0;
  for (;;) {
    const page = await pendingFiles(db, locations, after, RECONCILE_PAGE);
    for (const file of page) await enqueue(exportactionlogs, removalPayload(file.export_id, file.expires_at), { runAt: file.expires_at });
    seen += page.length;
    if (page.length < RECONCILE_PAGE) break;
    after = page[page.length - 1]!.export_id;
  }
  if (seen > 0) log.info({ files: seen }, 'export file removals reconciled with logexport');
  return seen;
}
