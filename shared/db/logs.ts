/**
 * Action logs (Quay's logentry3). `kind` is Quay's log kind name (push_repo, pull_repo,
 * delete_tag, create_tag, move_tag, revert_tag, create_repo, delete_repo, org_create, ...).
 * Written in the same transaction as the change they record.
 */
import type { Queryable } from './pool.ts';

export interface LogEntryInput {
  kind: string;
  /** Namespace the entry belongs to. */
  accountId?: number | null;
  /** Who did it (user or robot id); null for the system or anonymous. */
  performerId?: number | null;
  repositoryId?: number | null;
  ip?: string | null;
  metadata?: Record<string, unknown>;
  datetime?: Date;
}

/** Appends one action log entry. */
export async function writeLog(db: Queryable, entry: LogEntryInput): Promise<void> {
  await db.query(
    `INSERT INTO logentry (kind, account_id, performer_id, repository_id, ip, metadata_json, datetime)
     VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now()))`,
    [entry.kind, entry.accountId ?? null, entry.performerId ?? null, entry.repositoryId ?? null, entry.ip ?? null,
      JSON.stringify(entry.metadata ?? {}), entry.datetime ?? null],
  );
}

export interface LogEntryRow {
  id: number;
  kind: string;
  account_id: number | null;
  performer_id: number | null;
  repository_id: number | null;
  datetime: Date;
  ip: string | null;
  metadata_json: Record<string, unknown>;
}

/** Entries of a namespace (optionally one repository) between two instants, newest first, at most `limit`. */
export async function listLogs(
  db: Queryable, filter: { accountId?: number; repositoryId?: number; start: Date; end: Date; limit: number },
): Promise<LogEntryRow[]> {
  const { rows } = await db.query<LogEntryRow>(
    `SELECT id, kind, account_id, performer_id, repository_id, datetime, ip, metadata_json FROM logentry
     WHERE ($1::bigint IS NULL OR account_id = $1) AND ($2::bigint IS NULL OR repository_id = $2)
       AND datetime >= $3 AND datetime < $4
     ORDER BY datetime DESC, id DESC LIMIT $5`,
    [filter.accountId ?? null, filter.repositoryId ?? null, filter.start, filter.end, filter.limit]);
  return rows;
}
