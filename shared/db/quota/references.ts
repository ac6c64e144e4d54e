/**
 * Reference counts behind the running totals (migration quota-blob-references): a blob's size
 * joins a repository total when its first manifest link in that repository appears, and the
 * namespace total when the first repository of the namespace gets it; it leaves on the last.
 * Adding happens in the push's one statement (push-update.ts); removing, for GC, here.
 * Rows are locked in blob id order at both levels, so concurrent pushes and GC transactions in one
 * namespace queue behind each other per blob instead of deadlocking.
 */
import type { Queryable } from '../pool.ts';

/** A blob and its compressed size in bytes. */
export interface SizedBlob {
  readonly id: number;
  readonly size: number;
}

/** A blob whose manifest links were removed, `links` of them at once. */
export interface UnlinkedBlob extends SizedBlob {
  readonly links: number;
}

/** Bytes a change adds (positive) or removes (negative) at each level. */
export interface SizeDeltas {
  readonly repositoryBytes: number;
  readonly namespaceBytes: number;
}

/** The blobs of `blobs` with distinct ids (a manifest may list a layer twice; it is linked once). */
export function distinctBlobs(blobs: readonly SizedBlob[]): SizedBlob[] {
  const byId = new Map<number, SizedBlob>();
  for (const blob of blobs) byId.set(blob.id, blob);
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

/**
 * Removes manifest links of `blobs` from the repository's counts, and the namespace's counts for
 * blobs the repository no longer links at all; returns the (negative) bytes that left each level.
 * Call holding the namespace quota lock, with totals complete.
 */
export async function removeBlobReferences(
  tx: Queryable, target: { namespaceId: number; repositoryId: number }, blobs: readonly UnlinkedBlob[],
): Promise<SizeDeltas> {
  if (blobs.length === 0) return { repositoryBytes: 0, namespaceBytes: 0 };
  const sizes = new Map(blobs.map((b) => [b.id, b.size]));
  const leftRepository = await decrement(tx, 'quotarepositoryblob', 'repository_id', target.repositoryId, blobs);
  const leftNamespace = await decrement(tx, 'quotanamespaceblob', 'namespace_id', target.namespaceId,
    leftRepository.map((id) => ({ id, links: 1 })));
  const bytes = (ids: number[]) => ids.reduce((sum, id) => sum + (sizes.get(id) ?? 0), 0);
  return { repositoryBytes: -bytes(leftRepository), namespaceBytes: -bytes(leftNamespace) };
}

/**
 * Lowers the counts of `blobs` by their `links` in one level's table and deletes the rows that
 * reach zero; returns the ids deleted. The locking read comes first in the statement, so the
 * delete and update act on the count another transaction may just have committed.
 */
async function decrement(
  tx: Queryable, table: 'quotarepositoryblob' | 'quotanamespaceblob', keyColumn: 'repository_id' | 'namespace_id',
  key: number, blobs: readonly { id: number; links: number }[],
): Promise<number[]> {
  if (blobs.length === 0) return [];
  const sorted = [...blobs].sort((a, b) => a.id - b.id);
  const { rows } = await tx.query<{ blob_id: number }>(
    `WITH d AS (SELECT * FROM unnest($2::bigint[], $3::int[]) AS t(blob_id, links)),
     locked AS (
       SELECT q.blob_id, q.refcount - d.links AS remaining FROM ${table} q JOIN d USING (blob_id)
       WHERE q.${keyColumn} = $1 ORDER BY q.blob_id FOR UPDATE OF q),
     gone AS (
       DELETE FROM ${table} q USING locked l
       WHERE q.${keyColumn} = $1 AND q.blob_id = l.blob_id AND l.remaining <= 0 RETURNING q.blob_id),
     kept AS (
       UPDATE ${table} q SET refcount = l.remaining FROM locked l
       WHERE q.${keyColumn} = $1 AND q.blob_id = l.blob_id AND l.remaining > 0 RETURNING q.blob_id)
     SELECT blob_id FROM gone`,
    [key, sorted.map((b) => b.id), sorted.map((b) => b.links)]);
  return rows.map((r) => r.blob_id);
}
