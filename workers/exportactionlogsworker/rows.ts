/** The worker's SQL over `logexport`: the request, its result, and which reports went out. */
import type { Queryable } from '../../shared/db/pool.ts';

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
 * outlasts this attempt. Returns the key and location to write.
 */
export async function claimExportFile(
  db: Queryable, exportId: string, fresh: { key: string; location: string }, locations: readonly string[], holdSeconds: number,
): Promise<{ key: string; location: string }> {
  const { rows } = await db.query<{ result_key: string; location: string }>(
    `UPDATE logexport
     SET result_key = CASE WHEN location = ANY($4::text[]) AND result_key IS NOT NULL THEN result_key ELSE $2 END,
         location = CASE WHEN location = ANY($4::text[]) AND result_key IS NOT NULL THEN location ELSE $3 END,
         expires_at = now() + make_interval(secs => $5), removed = NULL
     WHERE export_id = $1 RETURNING result_key, location`,
    [exportId, fresh.key, fresh.location, locations, holdSeconds]);
  return { key: rows[0]!.result_key, location: rows[0]!.location };
}

/**
 * Records the final status. A success's file is kept `retentionSeconds` (the link's lifetime);
 * whatever a failed attempt may have left at the claimed key is due for removal at once.
 */
export async function finishExport(
  db: Queryable, exportId: string,
  result: { status: 'success' | 'failed' | 'timedout'; url?: string; rows?: number; bytes?: number; error?: string; retentionSeconds?: number },
): Promise<void> {
  await db.query(
    `UPDATE logexport SET status = $2, url = $3, rows_exported = $4, bytes_exported = $5, error = $6, finished = now(),
            expires_at = CASE WHEN result_key IS NULL THEN NULL ELSE now() + make_interval(secs => $7) END
     WHERE export_id = $1`,
    [exportId, result.status, result.url ?? null, result.rows ?? null, result.bytes ?? null, result.error ?? null,
      result.status === 'success' ? result.retentionSeconds ?? 0 : 0]);
}

/** An exported file whose retention has passed. */
export interface ExpiredFile {
  export_id: string;
  result_key: string;
  location: string;
}

/** Up to `limit` expired files in `locations`, oldest expiry first (the partial index `logexport_due_removal`). */
export async function expiredFiles(db: Queryable, locations: readonly string[], limit: number): Promise<ExpiredFile[]> {
  const { rows } = await db.query<ExpiredFile>(
    `SELECT export_id, result_key, location FROM logexport
     WHERE result_key IS NOT NULL AND removed IS NULL AND expires_at <= now() AND location = ANY($1::text[])
     ORDER BY expires_at LIMIT $2`, [locations, limit]);
  return rows;
}

/** Records that these exports' files are gone; an export claimed again meanwhile (expiry moved on) is left alone. */
export async function markFilesRemoved(db: Queryable, exportIds: readonly string[]): Promise<void> {
  await db.query(`UPDATE logexport SET removed = now() WHERE export_id = ANY($1::uuid[]) AND expires_at <= now()`, [exportIds]);
}

/** Records that the callback or the e-mail was delivered (or deliberately skipped). */
export async function markReported(db: Queryable, exportId: string, what: 'callback' | 'email'): Promise<void> {
  await db.query(`UPDATE logexport SET ${what === 'callback' ? 'callback_sent' : 'email_sent'} = now() WHERE export_id = $1`, [exportId]);
}
