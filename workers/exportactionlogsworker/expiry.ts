/**
 * Removing exported files past their retention (Quay never removes them, although its e-mail says
 * the link "will remain accessible for N seconds before being deleted"). A success's file is kept
 * `EXPORT_ACTION_LOGS_SECONDS`, the lifetime of its link; a failed attempt's leftover is due at
 * once. Due files come from `logexport` (recorded before each file is written), never from a
 * storage listing, and each location's files go in one batch delete.
 */
import type { JobContext } from '../../shared/runtime/worker.ts';
import type { ExportServices } from './handler.ts';
import { exportedFilesRemoved } from './metrics.ts';
import { expiredFiles, markFilesRemoved, type ExpiredFile } from './rows.ts';

/** Files removed per round: one batch delete per location and one UPDATE. */
export const EXPIRY_BATCH = 100;

/** How often the sweep runs: every 5 minutes, or as often as the retention when it is shorter. */
export function expirySweepSeconds(retentionSeconds: number): number {
  return Math.max(1, Math.min(300, retentionSeconds));
}

/**
 * Removes every file whose retention has passed, in rounds of EXPIRY_BATCH; returns how many were
 * removed. A file the storage fails to delete stays due and is tried again by the next sweep.
 * Rows in a location no longer configured wait until it is configured again.
 */
export async function removeExpiredExports(ctx: JobContext<ExportServices>): Promise<number> {
  const { storage } = ctx;
  let removed = 0;
  for (;;) {
    if (ctx.signal.aborted) break;
    const due = await expiredFiles(ctx.db, storage.locations, EXPIRY_BATCH);
    const gone: string[] = [];
    let failed = 0;
    for (const [location, files] of byLocation(due)) {
      const result = await storage.store(location).deleteMany(files.map((f) => f.result_key));
      const deleted = new Set(result.deleted);
      gone.push(...files.filter((f) => deleted.has(f.result_key)).map((f) => f.export_id));
      for (const failure of result.failed) {
        failed += 1;
        ctx.log.warn({ location, key: failure.key, err: failure.error }, 'expired export file not removed; the next sweep retries');
      }
    }
    if (gone.length > 0) await markFilesRemoved(ctx.db, gone);
    removed += gone.length;
    exportedFilesRemoved.inc(gone.length);
    // A short round was the last; a full one with failures only would select the same rows again.
    if (due.length < EXPIRY_BATCH || failed === due.length) break;
  }
  if (removed > 0) ctx.log.info({ removed }, 'expired action log exports removed');
  return removed;
}

function byLocation(files: readonly ExpiredFile[]): Map<string, ExpiredFile[]> {
  const groups = new Map<string, ExpiredFile[]>();
  for (const file of files) groups.set(file.location, [...(groups.get(file.location) ?? []), file]);
  return groups;
}
