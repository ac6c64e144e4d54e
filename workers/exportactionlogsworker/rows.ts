/** The worker's SQL over `logexport`: the request, its result, which reports went out, and when its file goes. */
import { exportactionlogs } from '../../queues/exportactionlogs.ts';
import { enqueueInTransaction } from '../../shared/db/outbox.ts';
import { withTransaction, type Pool, type Queryable } from '../../shared/db/pool.ts';

/** One export request and what has happened to it. */
export interface ExportRow {
  export_id: string;
  namespace_id: number;
  repository_id: number | null;
  namespace_name: string | null;
  repository_name: string | null;
  start_time: Date;
  end_time: Date;
  callback_url: string | null;
  callback_email: string | null;
  status: string;
  url: string | null;
  callback_sent: Date | null;
  email_sent: Date | null;
}

/** The export `exportId`, or undefined. */
export async function loadExport(db: Queryable, exportId: string): Promise<ExportRow | undefined> {
  const { rows } = await db.query<ExportRow>(
    `SELECT export_id, namespace_id, repository_id, namespace_name, repository_name, start_time, end_time, callback_url, callback_email,
            status, url, callback_sent, email_sent
     FROM logexport WHERE export_id = $1`, [exportId]);
  return rows[0];
}

/**
 * Claims the export's file before anything is written: its key and location are recorded first
 * (an earlier attempt's are kept while that location is still configured, so a retry overwrites
 * the same file rather than leaving one behind), with a removal time `holdSeconds` ahead that
 * outlasts this attempt, and the delayed removal job for that time, in one transaction. Returns
 * the key and location to write.
 */
export async function claimExportFile(
  db: Pool, exportId: string, fresh: { key: string; location: string }, locations: readonly string[], holdSeconds: number,
): Promise<{ key: string; location: string }> {
  return withTransaction(db, async (tx) => {
    const { rows } = await tx.query<{ result_key: string; location: string; expires_at: Date }>(
      `UPDATE logexport
       SET result_key = CASE WHEN location = ANY($4::text[]) AND result_key IS NOT NULL THEN result_key ELSE $2 END,
           location = CASE WHEN location = ANY($4::text[]) AND result_key IS NOT NULL THEN location ELSE $3 END,
           expires_at = now() + make_interval(secs => $5), removed = NULL
       WHERE export_id = $1 RETURNING result_key, location, expires_at`,
      [exportId, fresh.key, fresh.location, locations, holdSeconds]);
    await scheduleRemoval(tx, exportId, rows[0]!.expires_at);
    return { key: rows[0]!.result_key, location: rows[0]!.location };
  });
}

/**
 * Records the final status. A success's file is kept `retentionSeconds` (the link's lifetime);
 * whatever a failed attempt may have left at the claimed key is due for removal at once. The
 * removal job for the new expiry is written in the same transaction.
 */
export async function finishExport(
  db: Pool, exportId: string,
  result: { status: 'success' | 'failed' | 'timedout'; url?: string; rows?: number; bytes?: number; error?: string; retentionSeconds?: number },
): Promise<void> {
  await withTransaction(db, async (tx) => {
    const { rows } = await tx.query<{ expires_at: Date | null }>(
      `UPDATE logexport SET status = $2, url = $3, rows_exported = $4, bytes_exported = $5, error = $6, finished = now(),
              expires_at = CASE WHEN result_key IS NULL THEN NULL ELSE now() + make_interval(secs => $7) END
       WHERE export_id = $1 RETURNING expires_at`,
      [exportId, result.status, result.url ?? null, result.rows ?? null, result.bytes ?? null, result.error ?? null,
        result.status === 'success' ? result.retentionSeconds ?? 0 : 0]);
    const expiresAt = rows[0]?.expires_at;
    if (expiresAt) await scheduleRemoval(tx, exportId, expiresAt);
  });
}

/** The removal job of `exportId`'s file for the expiry `dueAt` (its id names both, so it is written once). */
export function removalPayload(exportId: string, dueAt: Date): { v: 1; removeExportFile: string; dueAtMs: number } {
  return { v: 1, removeExportFile: exportId, dueAtMs: dueAt.getTime() };
}

async function scheduleRemoval(tx: Queryable, exportId: string, dueAt: Date): Promise<void> {
  await enqueueInTransaction(tx, exportactionlogs, removalPayload(exportId, dueAt), { runAt: dueAt });
}

/** An export file still in storage: its key, location and expiry. */
export interface PendingFile {
  export_id: string;
  result_key: string;
  location: string;
  expires_at: Date;
}

/** The file of `exportId` if it is still to be removed. */
export async function pendingFile(db: Queryable, exportId: string): Promise<PendingFile | undefined> {
  const { rows } = await db.query<PendingFile>(
    `SELECT export_id, result_key, location, expires_at FROM logexport
     WHERE export_id = $1 AND result_key IS NOT NULL AND removed IS NULL AND expires_at IS NOT NULL`, [exportId]);
  return rows[0];
}

/**
 * Up to `limit` files not yet removed in `locations` with an export id after `after`, in id order
 * (the reconcile's pages).
 */
export async function pendingFiles(db: Queryable, locations: readonly string[], after: string | null, limit: number): Promise<PendingFile[]> {
  const { rows } = await db.query<PendingFile>(
    `SELECT export_id, result_key, location, expires_at FROM logexport
     WHERE result_key IS NOT NULL AND removed IS NULL AND expires_at IS NOT NULL AND location = ANY($1::text[])
       AND ($2::uuid IS NULL OR export_id > $2::uuid)
     ORDER BY export_id LIMIT $3`, [locations, after, limit]);
  return rows;
}

/** Records that the file of `exportId` is gone, unless it was claimed again meanwhile (its expiry moved on). */
export async function markFileRemoved(db: Queryable, exportId: string): Promise<boolean> {
  const { rowCount } = await db.query(`UPDATE logexport SET removed = now() WHERE export_id = $1 AND expires_at <= now() AND removed IS NULL`, [exportId]);
  return rowCount === 1;
}

/** Records that the callback or the e-mail was delivered (or deliberately skipped). */
export async function markReported(db: Queryable, exportId: string, what: 'callback' | 'email'): Promise<void> {
  await db.query(`UPDATE logexport SET ${what === 'callback' ? 'callback_sent' : 'email_sent'} = now() WHERE export_id = $1`, [exportId]);
}
