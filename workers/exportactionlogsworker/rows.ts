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

/** Records the final status (and, on success, where the document is). */
export async function finishExport(
  db: Queryable, exportId: string,
  result: { status: 'success' | 'failed' | 'timedout'; key?: string; location?: string; url?: string; rows?: number; bytes?: number; error?: string },
): Promise<void> {
  await db.query(
    `UPDATE logexport SET status = $2, result_key = $3, location = $4, url = $5, rows_exported = $6, bytes_exported = $7, error = $8, finished = now()
     WHERE export_id = $1`,
    [exportId, result.status, result.key ?? null, result.location ?? null, result.url ?? null, result.rows ?? null, result.bytes ?? null, result.error ?? null]);
}

/** Records that the callback or the e-mail was delivered (or deliberately skipped). */
export async function markReported(db: Queryable, exportId: string, what: 'callback' | 'email'): Promise<void> {
  await db.query(`UPDATE logexport SET ${what === 'callback' ? 'callback_sent' : 'email_sent'} = now() WHERE export_id = $1`, [exportId]);
}
