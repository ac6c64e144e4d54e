/**
 * One rotation run (Quay's LogRotateWorker): while entries older than the cutoff remain, take the
 * 5000 oldest (through the datetime index, never a scan; Quay takes an id window instead, which
 * archives one row per file when ids and dates run in opposite orders), write them as a gzip'd
 * JSON array to `ACTION_LOG_ARCHIVE_PATH/<first>-<last>-logentry3.txt.gz` in
 * `ACTION_LOG_ARCHIVE_LOCATION`, and only then delete exactly those rows. A SIGKILL between the
 * write and the delete leaves rows that the next run archives again under the same name
 * (an overwrite with the same content), so nothing is lost and nothing is deleted unarchived.
 */
import { gzipSync } from 'node:zlib';
import type { ActionLogRotationPayload } from '../../queues/actionlogrotation.ts';
import type { Config } from '../../shared/config/index.ts';
import { parseDurationSeconds } from '../../shared/config/index.ts';
import type { Pool } from '../../shared/db/pool.ts';
import { client, metric } from '../../shared/metrics/index.ts';
import { DeferError } from '../../shared/runtime/outcomes.ts';
import type { JobContext, WorkerServices } from '../../shared/runtime/worker.ts';
import type { DistributedStorage } from '../../shared/storage/distributed.ts';

/** What the logrotateworker needs from its process. */
export interface RotationServices extends WorkerServices {
  readonly storage: DistributedStorage;
  readonly config: Config;
}

/** Entries per archive file (Quay's MIN_LOGS_PER_ROTATION). */
export const ROTATION_BATCH_ROWS = 5000;
/** Entries younger than this are never archived, whatever the threshold (Quay's MINIMUM_LOGS_AGE_FOR_ARCHIVE). */
export const MINIMUM_AGE_S = 7 * 86_400;
/** Work per run before the job defers itself. */
const SLICE_MS = 60_000;
const LOCK_KEY = "hashtextextended('actionlogrotation', 0)";

const archivedRows = metric('quayfleet_logs_archived_rows_total', () => new client.Counter({
  name: 'quayfleet_logs_archived_rows_total', help: 'action log entries archived to storage and deleted by log rotation',
}));

/** The cutoff of a config at `nowMs`: now − max(ACTION_LOG_ROTATION_THRESHOLD, 7 days). */
export function rotationCutoff(config: Config, nowMs: number): Date {
  const thresholdS = parseDurationSeconds(config.quay.ACTION_LOG_ROTATION_THRESHOLD) ?? 30 * 86_400;
  return new Date(nowMs - Math.max(thresholdS, MINIMUM_AGE_S) * 1000);
}

interface ArchivedRow {
  id: number;
  kind: string;
  account_id: number | null;
  performer_id: number | null;
  repository_id: number | null;
  datetime: string;
  ip: string | null;
  metadata_json: string;
}

/** Handles one rotation tick. */
export async function handleRotation(_payload: ActionLogRotationPayload, ctx: JobContext<RotationServices>): Promise<void> {
  const result = await rotateLogs(ctx.db, ctx.storage, ctx.config, { cutoff: rotationCutoff(ctx.config, Date.now()), deadlineMs: Date.now() + SLICE_MS, signal: ctx.signal });
  if (result === 'locked') return ctx.log.info('another rotation holds the lock; this tick does nothing');
  ctx.log.info({ files: result.files, rows: result.rows }, 'action logs rotated');
  if (!result.done) throw new DeferError(100, 'rotation slice ended; continuing');
}

/**
 * Archives and deletes entries older than `cutoff`, one window at a time, until none remain or
 * `deadlineMs` passes. 'locked' when another rotation runs (a session advisory lock: it dies
 * with its connection, so a killed run never blocks the next).
 */
export async function rotateLogs(
  db: Pool, storage: DistributedStorage, config: Config, options: { cutoff: Date; deadlineMs: number; signal?: AbortSignal },
): Promise<'locked' | { done: boolean; files: number; rows: number }> {
  const location = config.quay.ACTION_LOG_ARCHIVE_LOCATION!;
  const prefix = (config.quay.ACTION_LOG_ARCHIVE_PATH ?? 'actionlogarchive/').replace(/\/+$/, '');
  const store = storage.store(location);
  const session = await db.connect();
  let files = 0;
  let rows = 0;
  try {
    const { rows: [lock] } = await session.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(${LOCK_KEY}) AS locked`);
    if (!lock!.locked) return 'locked';
    try {
      for (;;) {
        if (Date.now() > options.deadlineMs || options.signal?.aborted) return { done: false, files, rows };
        const { rows: stale } = await session.query<ArchivedRow>(
          `SELECT id, kind, account_id, performer_id, repository_id, datetime::text AS datetime, ip, metadata_json::text AS metadata_json
           FROM logentry WHERE datetime < $1 ORDER BY datetime, id LIMIT ${ROTATION_BATCH_ROWS}`, [options.cutoff]);
        if (stale.length === 0) return { done: true, files, rows };
        const ids = stale.map((r) => r.id);
        const firstId = Math.min(...ids);
        const lastId = Math.max(...ids);
        // Quay's archive record; `kind` carries the kind name where Quay has `kind_id`.
        const body = JSON.stringify(stale.map((r) => ({
          kind: r.kind, account_id: r.account_id, performer_id: r.performer_id, repository_id: r.repository_id,
          datetime: r.datetime, ip: r.ip, metadata_json: r.metadata_json,
        })));
        const gzipped = gzipSync(body, { level: 1 });
        await store.put(`${prefix}/${firstId}-${lastId}-logentry3.txt.gz`, gzipped, { contentLength: gzipped.length, contentType: 'application/json' });
        const deleted = await session.query(`DELETE FROM logentry WHERE id = ANY($1::bigint[])`, [ids]);
        files += 1;
        rows += deleted.rowCount ?? 0;
        archivedRows.inc(deleted.rowCount ?? 0);
      }
    } finally {
      await session.query(`SELECT pg_advisory_unlock(${LOCK_KEY})`);
    }
  } finally {
    session.release();
  }
}
