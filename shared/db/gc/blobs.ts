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
import { tryLockDigestSql } from './locks.ts';
import type { GcTally } from './tally.ts';

/** Outcome of one blob collection. */
export interface BlobCollection {
  /** `pendingstoragedeletion` ids now holding this transaction's objects. */
  readonly pendingIds: number[];
  /**
   * Candidates skipped because another transaction holds their digest lock or row: a push, or a
   * collection elsewhere whose own unlinking may be what keeps them. Retry them once those commit
   * (`collectBlobs` after a pause): otherwise both sides could skip a blob that is garbage.
   */
  readonly busyIds: number[];
}

/**
 * Collects the candidates in `blobIds` that are orphaned, inside the caller's transaction `tx`,
 * counting deletions into `counts`. Takes each digest's push lock (try, never wait) and the row
 * lock before re-checking, so a concurrent push either finished (and its reference is seen) or
 * waits for this transaction and then finds no row and creates a new one.
 */
export async function collectOrphanBlobs(tx: Queryable, blobIds: readonly number[], options: { nowMs: number; counts: GcTally }): Promise<BlobCollection> {
  if (blobIds.length === 0) return { pendingIds: [], busyIds: [] };
  const { candidates, locked } = await lockCandidates(tx, [...new Set(blobIds)]);
  const lockedIds = new Set(locked.map((b) => b.id));
  const busyIds = candidates.filter((id) => !lockedIds.has(id));
  // Only content-addressed sha256 digests map to an object key; anything else is never ours to delete.
  const collectable = locked.filter((b) => isBlobDigest(b.content_checksum));
  if (collectable.length === 0) return { pendingIds: [], busyIds };
  return { pendingIds: await deleteOrphans(tx, collectable, options.nowMs, options.counts), busyIds };
}

/**
 * In one round trip: the candidates that still exist (never the empty layer), and those whose
 * digest's push lock and row lock this transaction now holds. The key expression is
 * `lockBlobDigest`'s (`shared/db/locks.ts`); a test checks they exclude each other. Trying never
 * waits: GC neither deadlocks with a push nor stalls behind one; a busy digest (or row) is left
 * for a later pass. A digest lock taken for a row then skipped is only held until commit.
 */
async function lockCandidates(tx: Queryable, ids: number[]): Promise<{ candidates: number[]; locked: Candidate[] }> {
  const { rows } = await tx.query<{ candidates: string[] | null; locked: Candidate[] | null }>(
    `WITH c AS MATERIALIZED (
       SELECT id, content_checksum FROM imagestorage WHERE id = ANY($1::bigint[]) AND content_checksum <> $2),
     l AS MATERIALIZED (
       SELECT s.id, s.content_checksum, s.image_size FROM imagestorage s JOIN c ON c.id = s.id
        WHERE ${tryLockDigestSql('c.content_checksum')}
        ORDER BY s.id FOR UPDATE OF s SKIP LOCKED)
     SELECT (SELECT array_agg(id) FROM c) AS candidates, (SELECT json_agg(l) FROM l) AS locked`,
    [ids, EMPTY_LAYER_DIGEST]);
  // bigint[] comes back as strings (only scalar int8 is parsed as a number).
  return { candidates: (rows[0]!.candidates ?? []).map(Number), locked: rows[0]!.locked ?? [] };
}

/**
 * In one statement, after the locks (so its fresh snapshot sees every reference committed before
 * them, and none can commit after: its FK check would wait): re-checks which locked candidates
 * nothing protects, then deletes their expired leases, records one pending deletion per placement
 * (an older record for the same object is reused), and deletes the placements and the rows.
 * Returns the records. Every part reads the statement's snapshot, so the records see the
 * placements being deleted.
 */
async function deleteOrphans(tx: Queryable, candidates: Candidate[], nowMs: number, counts: GcTally): Promise<number[]> {
  const { rows } = await tx.query<{ leases: number; placements: number; storages: number; pending: number[] | null }>(
    // `= ANY(ARRAY(...))` rather than a join on the orphans: the planner then uses each table's index.
    `WITH o AS MATERIALIZED (
       SELECT c.id, c.checksum, c.object_key, c.size
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) AS c(id, checksum, object_key, size)
         JOIN imagestorage s ON s.id = c.id AND s.id = ANY($1::bigint[])
        WHERE ${orphanPredicate('$5')}),
     leases AS (DELETE FROM uploadedblob WHERE blob_id = ANY(ARRAY(SELECT id FROM o)) RETURNING 1),
     pending AS (
       INSERT INTO pendingstoragedeletion (location_id, content_checksum, object_key, size_bytes)
       SELECT p.location_id, o.checksum, o.object_key, o.size
         FROM o JOIN imagestorageplacement p ON p.storage_id = o.id AND p.storage_id = ANY(ARRAY(SELECT id FROM o))
       ON CONFLICT (location_id, object_key) DO UPDATE SET content_checksum = EXCLUDED.content_checksum, size_bytes = EXCLUDED.size_bytes
       RETURNING id),
     placements AS (DELETE FROM imagestorageplacement WHERE storage_id = ANY(ARRAY(SELECT id FROM o)) RETURNING 1),
     storages AS (DELETE FROM imagestorage WHERE id = ANY(ARRAY(SELECT id FROM o)) RETURNING 1)
     SELECT (SELECT count(*) FROM leases)::int AS leases, (SELECT count(*) FROM placements)::int AS placements,
            (SELECT count(*) FROM storages)::int AS storages, (SELECT array_agg(id) FROM pending) AS pending`,
    [candidates.map((c) => c.id), candidates.map((c) => c.content_checksum), candidates.map((c) => blobKey(c.content_checksum)),
      candidates.map((c) => c.image_size), nowMs]);
  const result = rows[0]!;
  counts.rowsDeleted('UploadedBlob', result.leases);
  counts.rowsDeleted('ImageStoragePlacement', result.placements);
  counts.rowsDeleted('ImageStorage', result.storages);
  return result.pending ?? [];
}

interface Candidate {
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

/** Whether `digest` has a content-addressed object key (`blobKey` accepts it). */
export function isBlobDigest(digest: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(digest);
}
