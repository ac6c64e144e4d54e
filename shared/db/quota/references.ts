/**
 * Reference counts behind the running totals (migration quota-blob-references): a blob's size
 * joins a repository total when its first manifest link in that repository appears, and the
 * namespace total when the first repository of the namespace gets it; it leaves on the last.
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
 * Counts one new manifest link of each of `blobs` (distinct ids) in the repository, and the
 * namespace level for blobs new to the repository; returns the bytes new at each level (nothing
 * when the namespace's totals are not complete, re-checked here after the caller's lock). One
 * statement: the upserts serialize on the count rows, so two pushes of one new blob cannot both
 * see it as new. Call holding the namespace quota lock.
 */
export async function addBlobReferences(
  tx: Queryable, target: { namespaceId: number; repositoryId: number }, blobs: readonly SizedBlob[],
): Promise<SizeDeltas> {
  if (blobs.length === 0) return { repositoryBytes: 0, namespaceBytes: 0 };
  const { rows } = await tx.query<{ repository_bytes: number; namespace_bytes: number }>(
    `WITH input AS (
       SELECT * FROM unnest($3::bigint[], $4::bigint[]) AS t(blob_id, size)
       -- Counts of a namespace whose totals are not complete are the backfill's to rebuild.
       WHERE EXISTS (SELECT 1 FROM quotanamespacesize WHERE namespace_user_id = $1 AND backfill_complete)),
     repo AS (
       INSERT INTO quotarepositoryblob AS q (repository_id, blob_id, refcount)
       SELECT $2, blob_id, 1 FROM input ORDER BY blob_id
       ON CONFLICT (repository_id, blob_id) DO UPDATE SET refcount = q.refcount + 1
       RETURNING q.blob_id, q.refcount),
     ns AS (
       INSERT INTO quotanamespaceblob AS q (namespace_id, blob_id, refcount)
       SELECT $1, blob_id, 1 FROM repo WHERE refcount = 1 ORDER BY blob_id
       ON CONFLICT (namespace_id, blob_id) DO UPDATE SET refcount = q.refcount + 1
       RETURNING q.blob_id, q.refcount)
     SELECT COALESCE((SELECT sum(i.size) FROM input i JOIN repo r USING (blob_id) WHERE r.refcount = 1), 0)::bigint AS repository_bytes,
            COALESCE((SELECT sum(i.size) FROM input i JOIN ns n USING (blob_id) WHERE n.refcount = 1), 0)::bigint AS namespace_bytes`,
    [target.namespaceId, target.repositoryId, blobs.map((b) => b.id), blobs.map((b) => b.size)]);
  return { repositoryBytes: rows[0]!.repository_bytes, namespaceBytes: rows[0]!.namespace_bytes };
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
