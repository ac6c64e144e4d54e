/**
 * Invariant 3 as a query: every complete total equals a from-scratch recomputation (the sizes of
 * the distinct blobs its `manifestblob` rows link), and every reference count equals its links.
 * Repositories marked for deletion are left out at the repository level only: their purge
 * deletes the repository total before it is done with their manifests, which still count for
 * the namespace until collected. Read-only; tests, the benchmark and operators use it.
 */
import type { Queryable } from '../pool.ts';

/** One total or count that differs from the recomputation. */
export interface QuotaMismatch {
  readonly kind: 'namespace' | 'repository' | 'namespace_blob' | 'repository_blob';
  /** Namespace or repository id. */
  readonly id: number;
  readonly blobId?: number;
  readonly stored: number;
  readonly expected: number;
}

/** Differences between the complete totals (and their counts) and a recomputation; empty when exact. */
export async function auditQuotaTotals(db: Queryable): Promise<QuotaMismatch[]> {
  const mismatches: QuotaMismatch[] = [];
  const namespaces = await db.query<{ id: number; stored: number; expected: number }>(
    `SELECT s.namespace_user_id AS id, s.size_bytes AS stored,
            COALESCE((SELECT sum(b.image_size) FROM imagestorage b WHERE b.id IN (
               SELECT mb.blob_id FROM manifestblob mb JOIN repository r ON r.id = mb.repository_id
               WHERE r.namespace_user_id = s.namespace_user_id)), 0)::bigint AS expected
     FROM quotanamespacesize s WHERE s.backfill_complete`);
  mismatches.push(...differing('namespace', namespaces.rows));
  const repositories = await db.query<{ id: number; stored: number; expected: number }>(
    `SELECT r.id, COALESCE(q.size_bytes, 0) AS stored,
            COALESCE((SELECT sum(b.image_size) FROM imagestorage b WHERE b.id IN (
               SELECT mb.blob_id FROM manifestblob mb WHERE mb.repository_id = r.id)), 0)::bigint AS expected
     FROM repository r JOIN quotanamespacesize s ON s.namespace_user_id = r.namespace_user_id AND s.backfill_complete
     LEFT JOIN quotarepositorysize q ON q.repository_id = r.id
     WHERE r.state <> 3`); // a repository being purged loses its total row before its last manifests (Quay's purge order)
  mismatches.push(...differing('repository', repositories.rows));
  mismatches.push(...await auditCounts(db));
  return mismatches;
}

function differing(kind: QuotaMismatch['kind'], rows: { id: number; stored: number; expected: number }[]): QuotaMismatch[] {
  return rows.filter((r) => r.stored !== r.expected).map((r) => ({ kind, id: r.id, stored: r.stored, expected: r.expected }));
}

async function auditCounts(db: Queryable): Promise<QuotaMismatch[]> {
  const repository = await db.query<{ id: number; blob_id: number; stored: number; expected: number }>(
    `WITH complete AS (SELECT r.id FROM repository r JOIN quotanamespacesize s ON s.namespace_user_id = r.namespace_user_id AND s.backfill_complete),
     truth AS (SELECT repository_id, blob_id, count(*)::int AS n FROM manifestblob WHERE repository_id IN (SELECT id FROM complete) GROUP BY 1, 2)
     SELECT COALESCE(t.repository_id, q.repository_id) AS id, COALESCE(t.blob_id, q.blob_id) AS blob_id,
            COALESCE(q.refcount, 0) AS stored, COALESCE(t.n, 0) AS expected
     FROM truth t FULL JOIN (SELECT * FROM quotarepositoryblob WHERE repository_id IN (SELECT id FROM complete)) q
       ON q.repository_id = t.repository_id AND q.blob_id = t.blob_id
     WHERE COALESCE(q.refcount, 0) <> COALESCE(t.n, 0)`);
  const namespace = await db.query<{ id: number; blob_id: number; stored: number; expected: number }>(
    `WITH complete AS (SELECT namespace_user_id AS id FROM quotanamespacesize WHERE backfill_complete),
     truth AS (SELECT r.namespace_user_id, mb.blob_id, count(DISTINCT mb.repository_id)::int AS n
               FROM manifestblob mb JOIN repository r ON r.id = mb.repository_id
               WHERE r.namespace_user_id IN (SELECT id FROM complete) GROUP BY 1, 2)
     SELECT COALESCE(t.namespace_user_id, q.namespace_id) AS id, COALESCE(t.blob_id, q.blob_id) AS blob_id,
            COALESCE(q.refcount, 0) AS stored, COALESCE(t.n, 0) AS expected
     FROM truth t FULL JOIN (SELECT * FROM quotanamespaceblob WHERE namespace_id IN (SELECT id FROM complete)) q
       ON q.namespace_id = t.namespace_user_id AND q.blob_id = t.blob_id
     WHERE COALESCE(q.refcount, 0) <> COALESCE(t.n, 0)`);
  return [
    ...repository.rows.map((r) => ({ kind: 'repository_blob' as const, id: r.id, blobId: r.blob_id, stored: r.stored, expected: r.expected })),
    ...namespace.rows.map((r) => ({ kind: 'namespace_blob' as const, id: r.id, blobId: r.blob_id, stored: r.stored, expected: r.expected })),
  ];
}
