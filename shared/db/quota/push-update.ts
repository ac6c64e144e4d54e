/**
 * A push's quota update in one statement, because it sits on the push's critical path (QUOTA-10):
 * count the new manifest's blob links at repository and namespace level (references.ts explains
 * the counts), add the bytes of the blobs new at each level to the totals, and read the namespace
 * quota for the limit check, all in one round trip. Nothing is written unless the namespace's
 * totals are complete, as read by this statement (after the caller took the quota lock).
 */
import type { Queryable } from '../pool.ts';
import { quotaFromJson, quotaJsonSql, type NamespaceQuota } from './limits.ts';
import type { SizedBlob } from './references.ts';

/** What a push's update found and did. */
export interface PushUpdate {
  /** False when the namespace's totals are not maintained (nothing was written). */
  readonly complete: boolean;
  /** Namespace total before and after this push. */
  readonly before: number;
  readonly after: number;
  readonly quota: NamespaceQuota | undefined;
}

/**
 * Adds `blobs` (distinct ids, sorted: rows are locked in id order) of a new manifest in
 * `target.repositoryId` to the reference counts and totals; with no blobs it only reads the total
 * and the quota. The upserts serialize on the count rows and the total rows, so concurrent pushes
 * of one new blob add it once, and two pushes against one limit see each other's bytes.
 */
export async function applyPushedBlobs(
  tx: Queryable, target: { namespaceId: number; repositoryId: number }, blobs: readonly SizedBlob[],
): Promise<PushUpdate> {
  // Named: prepared once per connection, so the planner does not re-plan this statement per push.
  const { rows } = await tx.query<{ complete: boolean; ns_bytes: number; after: number | null; current: number | null; quota: unknown }>({
    name: 'quota-push-update',
    text: `WITH state AS (SELECT backfill_complete AS complete, size_bytes FROM quotanamespacesize WHERE namespace_user_id = $1),
     input AS (SELECT * FROM unnest($3::bigint[], $4::bigint[]) AS t(blob_id, size) WHERE EXISTS (SELECT 1 FROM state WHERE complete)),
     repo AS (
       INSERT INTO quotarepositoryblob AS q (repository_id, blob_id, refcount)
       SELECT $2, blob_id, 1 FROM input ORDER BY blob_id
       ON CONFLICT (repository_id, blob_id) DO UPDATE SET refcount = q.refcount + 1
       RETURNING q.blob_id, q.refcount),
     ns AS (
       INSERT INTO quotanamespaceblob AS q (namespace_id, blob_id, refcount)
       SELECT $1, blob_id, 1 FROM repo WHERE refcount = 1 ORDER BY blob_id
       ON CONFLICT (namespace_id, blob_id) DO UPDATE SET refcount = q.refcount + 1
       RETURNING q.blob_id, q.refcount),
     delta AS (
       SELECT COALESCE((SELECT sum(i.size) FROM input i JOIN repo r USING (blob_id) WHERE r.refcount = 1), 0)::bigint AS repo_bytes,
              COALESCE((SELECT sum(i.size) FROM input i JOIN ns n USING (blob_id) WHERE n.refcount = 1), 0)::bigint AS ns_bytes),
     repo_total AS (
       INSERT INTO quotarepositorysize AS q (repository_id, size_bytes, backfill_start_ms, backfill_complete)
       SELECT $2, repo_bytes, 0, true FROM delta WHERE repo_bytes > 0
       ON CONFLICT (repository_id) DO UPDATE SET size_bytes = q.size_bytes + EXCLUDED.size_bytes),
     ns_total AS (
       UPDATE quotanamespacesize q SET size_bytes = q.size_bytes + d.ns_bytes FROM delta d
       WHERE q.namespace_user_id = $1 AND q.backfill_complete AND d.ns_bytes > 0 RETURNING q.size_bytes)
     SELECT COALESCE((SELECT complete FROM state), false) AS complete, d.ns_bytes, (SELECT size_bytes FROM ns_total) AS after,
            (SELECT size_bytes FROM state) AS current, ${quotaJsonSql('$1')} AS quota
     FROM delta d`,
    values: [target.namespaceId, target.repositoryId, blobs.map((b) => b.id), blobs.map((b) => b.size)],
  });
  const row = rows[0]!;
  // A total another push raised since this statement's snapshot shows in `after` (the row was
  // re-read under its lock); without bytes of its own a push reports the snapshot's total.
  const after = row.after ?? row.current ?? 0;
  return { complete: row.complete, before: after - row.ns_bytes, after, quota: quotaFromJson(row.quota) };
}
