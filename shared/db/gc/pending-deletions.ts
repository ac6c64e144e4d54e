/**
 * Deletes the storage objects recorded in `pendingstoragedeletion`, after their rows are gone.
 * Per batch, in one transaction: claim records (SKIP LOCKED, so drains run in parallel), take the
 * push path's digest lock for each (try, never wait), keep the object when an `imagestorage` row
 * for that digest exists again (a push re-created it), delete the rest with the driver's batch
 * delete, then drop the records that succeeded. A storage error keeps its record with
 * `attempts`/`last_error` for a later drain; nothing is ever lost between database and storage.
 */
import { mapBounded } from '../../storage/concurrency.ts';
import type { ObjectStore } from '../../storage/types.ts';
import { withTransaction, type Pool, type Queryable } from '../pool.ts';
import { EMPTY_LAYER_DIGEST, PENDING_BATCH, STORAGE_CONCURRENCY } from './constants.ts';
import { tryLockDigestSql } from './locks.ts';
import type { GcListener } from './tally.ts';

/** The stores of the storage locations (`DistributedStorage` satisfies it). */
export interface BlobStores {
  /** The store of location `name`; throws for an unknown location. */
  store(name: string): ObjectStore;
}

/** Which records a drain takes and how hard it works. */
export interface DrainOptions {
  /** Only these records (a collection's own); default: all. */
  readonly ids?: readonly number[];
  /** Only records created at least this long ago (the sweep leaves fresh ones to their job). */
  readonly minAgeMs?: number;
  /** Stop after claiming this many records in total (bounds one sweep tick). */
  readonly limit?: number;
  /** Records per transaction (and per backend batch request at most). */
  readonly batchSize?: number;
  /** Transactions in flight at once. */
  readonly concurrency?: number;
  readonly listener?: GcListener;
  readonly signal?: AbortSignal;
}

/** What a drain did. */
export interface DrainResult {
  /** Objects deleted from storage (one per location) and their bytes. */
  deleted: number;
  bytes: number;
  /** Records dropped without deleting because the digest has a row again. */
  kept: number;
  /** Records whose delete failed; retried by a later drain. */
  failed: number;
  /** Records skipped because a push held their digest lock. */
  busy: number;
}

interface PendingRow {
  id: number;
  location: string;
  content_checksum: string;
  object_key: string;
  size_bytes: number;
}

interface ClaimedRow extends PendingRow {
  /** Whether this transaction now holds the digest's push lock. */
  locked: boolean;
}

/** Drains pending storage deletions until none matching `options` remain unclaimed (or `limit`). */
export async function drainPendingDeletions(pool: Pool, stores: BlobStores, options: DrainOptions = {}): Promise<DrainResult> {
  const total: DrainResult = { deleted: 0, bytes: 0, kept: 0, failed: 0, busy: 0 };
  const batch = options.batchSize ?? PENDING_BATCH;
  let budget = options.limit ?? Number.POSITIVE_INFINITY;
  // One cursor shared by the lanes and advanced as soon as a batch is claimed: each record is
  // visited once per drain, so a failing or busy one is not retried in a hot loop.
  const cursor = { value: 0 };
  let exhausted = false;
  const lane = async (): Promise<void> => {
    while (budget > 0 && !exhausted && !options.signal?.aborted) {
      const take = Math.min(batch, budget);
      budget -= take;
      const outcome = await drainBatch(pool, stores, { ...options, cursor, take });
      budget += take - outcome.claimed;
      // A short batch means nothing unclaimed is left past the cursor: no lane needs to look again.
      if (outcome.claimed < take) exhausted = true;
      if (outcome.claimed === 0) return;
      total.deleted += outcome.result.deleted;
      total.bytes += outcome.result.bytes;
      total.kept += outcome.result.kept;
      total.failed += outcome.result.failed;
      total.busy += outcome.result.busy;
      options.listener?.objectsDeleted(outcome.result.deleted, outcome.result.bytes);
    }
  };
  if (options.ids?.length === 0) return total;
  // A known, small set of records needs no more lanes than batches.
  const needed = options.ids ? Math.ceil(options.ids.length / batch) : Number.POSITIVE_INFINITY;
  const lanes = Math.max(1, Math.min(options.concurrency ?? STORAGE_CONCURRENCY, needed));
  await Promise.all(Array.from({ length: lanes }, lane));
  return total;
}

async function drainBatch(
  pool: Pool, stores: BlobStores, options: DrainOptions & { cursor: { value: number }; take: number },
): Promise<{ claimed: number; result: DrainResult }> {
  // Losing this commit in a crash only brings records back, and deleting again is harmless.
  return withTransaction(pool, async (tx) => {
    const rows = await claim(tx, options.cursor.value, options);
    const result: DrainResult = { deleted: 0, bytes: 0, kept: 0, failed: 0, busy: 0 };
    if (rows.length === 0) return { claimed: 0, result };
    options.cursor.value = Math.max(options.cursor.value, rows[rows.length - 1]!.id);
    const locked = rows.filter((r) => r.locked);
    const held = new Set(locked.map((r) => r.content_checksum));
    result.busy = rows.length - locked.length;
    const { rows: live } = await tx.query<{ content_checksum: string }>(
      `SELECT content_checksum FROM imagestorage WHERE content_checksum = ANY($1::text[])`, [[...held]]);
    const reborn = new Set(live.map((r) => r.content_checksum));
    // The empty layer is never deleted; a record for it can only be stale, so it is dropped.
    const kept = (r: PendingRow): boolean => reborn.has(r.content_checksum) || r.content_checksum === EMPTY_LAYER_DIGEST;
    const keep = locked.filter(kept);
    const doomed = locked.filter((r) => !kept(r));
    const { deleted, failed } = await deleteObjects(stores, doomed);
    result.kept = keep.length;
    result.deleted = deleted.length;
    result.bytes = deleted.reduce((sum, r) => sum + r.size_bytes, 0);
    result.failed = failed.length;
    await tx.query(`DELETE FROM pendingstoragedeletion WHERE id = ANY($1::bigint[])`, [[...keep, ...deleted].map((r) => r.id)]);
    await recordFailures(tx, failed);
    return { claimed: rows.length, result };
  }, { settings: 'SET LOCAL synchronous_commit = off' });
}

/**
 * Claims the next records past `afterId` and, in the same round trip, tries each one's digest
 * lock (`locked`): a record whose digest a push holds is left alone. The check for a row of the
 * digest must come in a later statement, whose snapshot sees every push that held the lock.
 */
async function claim(tx: Queryable, afterId: number, options: DrainOptions & { take: number }): Promise<ClaimedRow[]> {
  // Two shapes, so each gets its own plan: a run's own records by primary key, or the sweep's
  // oldest ones. The claim is materialized first, so only claimed records' digests are locked.
  const filter = options.ids
    ? `p.id = ANY($2::bigint[])`
    : `($2::float8 IS NULL OR p.created <= now() - make_interval(secs => $2::float8 / 1000))`;
  const { rows } = await tx.query<ClaimedRow>(
    `WITH claimed AS MATERIALIZED (
       SELECT p.id, l.name AS location, p.content_checksum, p.object_key, p.size_bytes
         FROM pendingstoragedeletion p JOIN imagestoragelocation l ON l.id = p.location_id
        WHERE p.id > $1 AND ${filter}
        ORDER BY p.id LIMIT $3 FOR UPDATE OF p SKIP LOCKED)
     SELECT c.*, ${tryLockDigestSql('c.content_checksum')} AS locked FROM claimed c ORDER BY c.id`,
    [afterId, options.ids ? [...options.ids].sort((a, b) => a - b) : options.minAgeMs ?? null, options.take]);
  return rows;
}

type Failure = { row: PendingRow; error: string };

/** Deletes each location's objects with its batch delete; bounded parallelism across chunks. */
async function deleteObjects(stores: BlobStores, rows: PendingRow[]): Promise<{ deleted: PendingRow[]; failed: Failure[] }> {
  const deleted: PendingRow[] = [];
  const failed: Failure[] = [];
  const chunks: { store: ObjectStore | Error; rows: PendingRow[] }[] = [];
  for (const [location, group] of groupBy(rows, (r) => r.location)) {
    let store: ObjectStore | Error;
    try {
      store = stores.store(location);
    } catch (error) {
      store = error as Error;
    }
    // Spread a group over the parallel requests (at least 50 keys each, at most the backend's
    // batch limit): one 1000-key DeleteObjects is slower than four of 250 in flight together.
    const size = store instanceof Error ? group.length
      : Math.max(1, Math.min(store.capabilities.maxBatchDeleteKeys, Math.max(50, Math.ceil(group.length / STORAGE_CONCURRENCY))));
    for (let i = 0; i < group.length; i += size) chunks.push({ store, rows: group.slice(i, i + size) });
  }
  await mapBounded(chunks, STORAGE_CONCURRENCY, async ({ store, rows: chunk }) => {
    if (store instanceof Error) return void failed.push(...chunk.map((row) => ({ row, error: store.message })));
    try {
      const result = await store.deleteMany(chunk.map((r) => r.object_key));
      const gone = new Set(result.deleted);
      const errors = new Map(result.failed.map((f) => [f.key, f.error.message]));
      for (const row of chunk) {
        if (gone.has(row.object_key)) deleted.push(row);
        else failed.push({ row, error: errors.get(row.object_key) ?? 'not reported deleted by the driver' });
      }
    } catch (error) {
      failed.push(...chunk.map((row) => ({ row, error: (error as Error).message })));
    }
  });
  return { deleted, failed };
}

async function recordFailures(tx: Queryable, failed: Failure[]): Promise<void> {
  if (failed.length === 0) return;
  await tx.query(
    `UPDATE pendingstoragedeletion p SET attempts = p.attempts + 1, last_error = f.error
       FROM unnest($1::bigint[], $2::text[]) AS f(id, error) WHERE p.id = f.id`,
    [failed.map((f) => f.row.id), failed.map((f) => f.error.slice(0, 2000))]);
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** Number of pending storage deletions and their bytes (for the gauge and the audit). */
export async function pendingDeletionStats(db: Queryable): Promise<{ count: number; bytes: number }> {
  const { rows } = await db.query<{ count: number; bytes: number }>(
    `SELECT count(*)::bigint AS count, COALESCE(sum(size_bytes), 0)::bigint AS bytes FROM pendingstoragedeletion`);
  return rows[0]!;
}
