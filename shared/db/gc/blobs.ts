/**
 * Blob collection inside a GC transaction: deletes the `imagestorage` rows of candidate blobs that
 * nothing references any more and records their objects in `pendingstoragedeletion`, in the same
 * transaction (storage objects are deleted later, by `pending-deletions.ts`, after the rows).
 *
 * A blob is collectable when no `manifestblob` row in any repository and no live `uploadedblob`
 * lease in any repository references it, it has at least one placement (a placement-less row is
 * a proxy-cache placeholder, kept as Quay does) and it is not the empty layer. Expired leases do
 * not protect a blob; they are deleted with it (their FK would block the row delete otherwise).
 */
import { blobKey } from '../../storage/keys.ts';
import type { Queryable } from '../pool.ts';
import { EMPTY_LAYER_DIGEST } from './constants.ts';
import { tryLockBlobDigests } from './locks.ts';
import type { GcTally } from './tally.ts';

/** Outcome of one blob collection. */
export interface BlobCollection {
  /** `pendingstoragedeletion` ids now holding this transaction's objects. */
  readonly pendingIds: number[];
  /** Candidates skipped because a push holds their digest lock or row (left for a later pass). */
  readonly busy: number;
}

/**
 * Collects the candidates in `blobIds` that are orphaned, inside the caller's transaction `tx`,
 * counting deletions into `counts`. Takes each digest's push lock (try, never wait) and the row
 * lock before re-checking, so a concurrent push either finished (and its reference is seen) or
 * waits for this transaction and then finds no row and creates a new one.
 */
export async function collectOrphanBlobs(tx: Queryable, blobIds: readonly number[], options: { nowMs: number; counts: GcTally }): Promise<BlobCollection> {
  if (blobIds.length === 0) return { pendingIds: [], busy: 0 };
  const { rows: blobs } = await tx.query<{ id: number; content_checksum: string }>(
    `SELECT id, content_checksum FROM imagestorage WHERE id = ANY($1::bigint[]) AND content_checksum <> $2`,
    [[...new Set(blobIds)], EMPTY_LAYER_DIGEST]);
  const held = await tryLockBlobDigests(tx, blobs.map((b) => b.content_checksum));
  const lockable = blobs.filter((b) => held.has(b.content_checksum)).map((b) => b.id);
  // Lock first, check after, in separate statements: a reference committed before the lock is
  // visible to the check's fresh snapshot, and none can commit after it (its FK check would wait).
  const { rows: locked } = await tx.query<{ id: number }>(
    `SELECT id FROM imagestorage WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE SKIP LOCKED`, [lockable]);
  const busy = blobs.length - locked.length;
  const orphans = await findOrphans(tx, locked.map((r) => r.id), options.nowMs);
  if (orphans.length === 0) return { pendingIds: [], busy };

  const leases = await tx.query(`DELETE FROM uploadedblob WHERE blob_id = ANY($1::bigint[])`, [orphans.map((o) => o.id)]);
  options.counts.rowsDeleted('UploadedBlob', leases.rowCount ?? 0);
  const pendingIds = await recordPendingDeletions(tx, orphans);
  const placements = await tx.query(`DELETE FROM imagestorageplacement WHERE storage_id = ANY($1::bigint[])`, [orphans.map((o) => o.id)]);
  options.counts.rowsDeleted('ImageStoragePlacement', placements.rowCount ?? 0);
  const storages = await tx.query(`DELETE FROM imagestorage WHERE id = ANY($1::bigint[])`, [orphans.map((o) => o.id)]);
  options.counts.rowsDeleted('ImageStorage', storages.rowCount ?? 0);
  return { pendingIds, busy };
}

interface Orphan {
  id: number;
  content_checksum: string;
  image_size: number;
}

/**
 * The SQL predicate "nothing protects imagestorage row `s`" given the current time in ms as the
 * parameter `nowParam` (e.g. `$2`); shared with the sweep so both apply the same rule.
 */
export function orphanPredicate(nowParam: string): string {
  return `NOT EXISTS (SELECT 1 FROM manifestblob mb WHERE mb.blob_id = s.id)
  AND NOT EXISTS (SELECT 1 FROM uploadedblob ub WHERE ub.blob_id = s.id AND ub.expires_at > to_timestamp(${nowParam}::float8 / 1000))
  AND EXISTS (SELECT 1 FROM imagestorageplacement p WHERE p.storage_id = s.id)
  AND s.content_checksum <> '${EMPTY_LAYER_DIGEST}'`;
}

async function findOrphans(tx: Queryable, ids: number[], nowMs: number): Promise<Orphan[]> {
  if (ids.length === 0) return [];
  const { rows } = await tx.query<Orphan>(
    `SELECT s.id, s.content_checksum, s.image_size FROM imagestorage s WHERE s.id = ANY($1::bigint[]) AND ${orphanPredicate('$2')}`,
    [ids, nowMs]);
  // Only content-addressed sha256 digests map to an object key; anything else is never ours to delete.
  return rows.filter((r) => isBlobDigest(r.content_checksum));
}

/** Whether `digest` has a content-addressed object key (`blobKey` accepts it). */
export function isBlobDigest(digest: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(digest);
}

// One pending record per placement (every location holding the object); an older record for the
// same object (a previous collection whose delete has not run yet) is reused, not duplicated.
async function recordPendingDeletions(tx: Queryable, orphans: Orphan[]): Promise<number[]> {
  const { rows } = await tx.query<{ id: number }>(
    `INSERT INTO pendingstoragedeletion (location_id, content_checksum, object_key, size_bytes)
     SELECT p.location_id, o.checksum, o.object_key, o.size
       FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) AS o(id, checksum, object_key, size)
       JOIN imagestorageplacement p ON p.storage_id = o.id
     ON CONFLICT (location_id, object_key) DO UPDATE SET content_checksum = EXCLUDED.content_checksum, size_bytes = EXCLUDED.size_bytes
     RETURNING id`,
    [orphans.map((o) => o.id), orphans.map((o) => o.content_checksum), orphans.map((o) => blobKey(o.content_checksum)), orphans.map((o) => o.image_size)]);
  return rows.map((r) => r.id);
}
