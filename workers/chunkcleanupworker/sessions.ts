/**
 * Abandoned upload sessions (`blobupload` rows): no chunk for longer than the threshold and no
 * request holding the session (a claim renewed while bytes stream). Quay decides by `created`,
 * which removes an upload still receiving chunks once it is two days old; here only inactivity
 * counts, so a live upload is never removed whatever its age.
 *
 * Cancelling works in batches, one transaction each: lock the batch's rows (SKIP LOCKED, so two
 * runs share the work), remove each session's stored bytes as its row records them (the staged
 * tail, the multipart write), then delete the rows whose bytes are gone. A crash mid-batch rolls
 * the rows back and the next run repeats the (idempotent) storage work, so a run is resumable
 * without a checkpoint. Bytes a crashed request wrote without recording them have no owner once
 * the row is gone; the storage sweeps (`storage-sweep.ts`) remove them by age.
 */
import { withTransaction, type Pool, type Queryable } from '../../shared/db/pool.ts';
import type { UploadStorageState } from '../../shared/db/uploads.ts';
import { mapBounded } from '../../shared/storage/concurrency.ts';
import { uploadKey } from '../../shared/storage/keys.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';

/** The stores of the storage locations (`DistributedStorage` satisfies it). */
export interface UploadStores {
  readonly locations: readonly string[];
  store(name: string): ObjectStore;
}

/** One abandoned session as an operator sees it. */
export interface AbandonedSession {
  id: number;
  uuid: string;
  repository: string;
  location: string;
  /** Bytes received and stored. */
  byteCount: number;
  created: Date;
  /** Last activity (the last chunk). */
  updated: Date;
}

/** What cancelling did. */
export interface SessionCleanup {
  /** Sessions cancelled (rows deleted). */
  sessions: number;
  /** Stored objects deleted and multipart writes aborted. */
  objects: number;
  /** Bytes the cancelled sessions held. */
  bytes: number;
  /** Sessions left because their storage could not be cleaned (retried next run). */
  failed: number;
}

/** Sessions whose storage is cleaned at once within a batch. */
export const STORAGE_CONCURRENCY = 8;

const ABANDONED = `u.updated < to_timestamp($1::float8 / 1000)
  AND (u.storage_metadata->'claim' IS NULL OR (u.storage_metadata->'claim'->>'untilMs')::bigint < $2::bigint)`;

interface Row {
  id: number;
  uuid: string;
  repository: string;
  location: string;
  byte_count: number;
  created: Date;
  updated: Date;
  storage_metadata: Partial<UploadStorageState>;
}

async function abandonedRows(db: Queryable, input: { nowMs: number; thresholdMs: number; afterId: number; limit: number; lock: boolean }): Promise<Row[]> {
  const { rows } = await db.query<Row>(
    `SELECT u.id, u.uuid::text AS uuid, n.username || '/' || r.name AS repository, l.name AS location, u.byte_count, u.created, u.updated,
            u.storage_metadata
       FROM blobupload u JOIN repository r ON r.id = u.repository_id JOIN namespace n ON n.id = r.namespace_user_id
       JOIN imagestoragelocation l ON l.id = u.location_id
      WHERE u.id > $3 AND ${ABANDONED}
      ORDER BY u.id LIMIT $4${input.lock ? ' FOR UPDATE OF u SKIP LOCKED' : ''}`,
    [input.nowMs - input.thresholdMs, input.nowMs, input.afterId, input.limit]);
  return rows;
}

/** Abandoned sessions, oldest id first, at most `limit` (for `uploads list`). */
export async function listAbandonedSessions(db: Queryable, input: { nowMs: number; thresholdMs: number; limit: number }): Promise<AbandonedSession[]> {
  const rows = await abandonedRows(db, { ...input, afterId: 0, lock: false });
  return rows.map((r) => ({ id: r.id, uuid: r.uuid, repository: r.repository, location: r.location, byteCount: r.byte_count, created: r.created, updated: r.updated }));
}

/** Count and bytes of abandoned sessions (the gauges). */
export async function abandonedSessionStats(db: Queryable, input: { nowMs: number; thresholdMs: number }): Promise<{ count: number; bytes: number }> {
  const { rows } = await db.query<{ count: number; bytes: number }>(
    `SELECT count(*)::bigint AS count, COALESCE(sum(u.byte_count), 0)::bigint AS bytes FROM blobupload u WHERE ${ABANDONED}`,
    [input.nowMs - input.thresholdMs, input.nowMs]);
  return rows[0]!;
}

/** Cancels every abandoned session in batches of `batchSize`; stops early when `signal` fires. */
export async function cancelAbandonedSessions(
  pool: Pool, stores: UploadStores, input: { nowMs: number; thresholdMs: number; batchSize?: number; signal?: AbortSignal; onBatch?: (done: SessionCleanup) => void },
): Promise<SessionCleanup> {
  const total: SessionCleanup = { sessions: 0, objects: 0, bytes: 0, failed: 0 };
  const limit = input.batchSize ?? 100;
  let cursor = 0;
  while (!input.signal?.aborted) {
    const batch = await withTransaction(pool, async (tx) => {
      const rows = await abandonedRows(tx, { nowMs: input.nowMs, thresholdMs: input.thresholdMs, afterId: cursor, limit, lock: true });
      const result: SessionCleanup = { sessions: 0, objects: 0, bytes: 0, failed: 0 };
      const done: number[] = [];
      await mapBounded(rows, STORAGE_CONCURRENCY, async (row) => {
        try {
          result.objects += await discardSessionObjects(stores.store(row.location), row.uuid, row.storage_metadata);
          done.push(row.id);
          result.bytes += row.byte_count;
        } catch {
          result.failed += 1; // an unreachable or unconfigured location: the row stays for the next run
        }
      });
      if (done.length > 0) await tx.query(`DELETE FROM blobupload WHERE id = ANY($1::bigint[])`, [done]);
      result.sessions = done.length;
      return { rows, result };
    });
    for (const key of ['sessions', 'objects', 'bytes', 'failed'] as const) total[key] += batch.result[key];
    input.onBatch?.(batch.result);
    if (batch.rows.length < limit) break;
    cursor = batch.rows[batch.rows.length - 1]!.id;
  }
  return total;
}

/**
 * Deletes the staged tail and aborts the multipart write that session `uuid` records (missing ones
 * are fine). Returns how many there were.
 */
export async function discardSessionObjects(store: ObjectStore, uuid: string, state: Partial<UploadStorageState>): Promise<number> {
  let removed = 0;
  if (state.uploadId !== undefined) {
    await store.abortMultipartUpload({ key: uploadKey(uuid), uploadId: state.uploadId, initiated: new Date(0) });
    removed += 1;
  }
  if (state.tail) {
    const result = await store.deleteMany([state.tail.key]);
    if (result.failed.length > 0) throw result.failed[0]!.error;
    removed += 1;
  }
  return removed;
}
