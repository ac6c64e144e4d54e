/**
 * The backfill (reference §3.3, redesigned per §8.3): computing a namespace's totals from scratch
 * for namespaces that have none, or whose totals went stale while quota management was off.
 *
 * One namespace is one transaction holding the exclusive quota lock: it rebuilds the reference
 * counts from `manifestblob`, writes every repository total and the namespace total, and marks
 * them complete together. Running updates hold the same lock shared until they commit, so none
 * is half-seen; a crash rolls the whole namespace back to "waiting" (Quay could leave it
 * "running" for ever), and running it twice computes the same thing.
 *
 * Scheduling: the worker's tick records when it first saw a namespace without usable totals
 * (`backfill_queued_ms`) and computes it QUOTA_TOTAL_DELAY_SECONDS later, so pods of a rolling
 * deployment that do not maintain totals yet have time to go. Namespaces without any manifest
 * are not queued: their first push starts their totals (accounting.ts).
 */
import { withTransaction, type Pool, type Queryable } from '../pool.ts';
import { lockNamespaceTotalsExclusive } from './locks.ts';

/** What one backfill run did: computed; nothing to do (already complete); namespace gone or being deleted. */
export type BackfillOutcome = 'computed' | 'already_complete' | 'gone';

/** Computes namespace `namespaceId`'s totals from scratch unless they are complete (or `force`). */
export async function backfillNamespace(pool: Pool, namespaceId: number, options: { force?: boolean; nowMs?: number } = {}): Promise<BackfillOutcome> {
  return withTransaction(pool, async (tx) => {
    await lockNamespaceTotalsExclusive(tx, namespaceId);
    const { rows } = await tx.query<{ complete: boolean | null }>(
      `SELECT s.backfill_complete AS complete FROM namespace n LEFT JOIN quotanamespacesize s ON s.namespace_user_id = n.id
       WHERE n.id = $1 AND NOT n.deleted AND NOT n.robot`, [namespaceId]);
    if (!rows[0]) return 'gone';
    if (rows[0].complete && !options.force) return 'already_complete';
    await recomputeNamespace(tx, namespaceId, options.nowMs ?? Date.now());
    return 'computed';
  });
}

// Set-based: four statements whatever the size of the namespace.
async function recomputeNamespace(tx: Queryable, namespaceId: number, nowMs: number): Promise<void> {
  const repositories = `SELECT id FROM repository WHERE namespace_user_id = $1`;
  await tx.query(`DELETE FROM quotarepositoryblob WHERE repository_id IN (${repositories})`, [namespaceId]);
  await tx.query(`DELETE FROM quotanamespaceblob WHERE namespace_id = $1`, [namespaceId]);
  await tx.query(
    `INSERT INTO quotarepositoryblob (repository_id, blob_id, refcount)
     SELECT mb.repository_id, mb.blob_id, count(*) FROM manifestblob mb WHERE mb.repository_id IN (${repositories}) GROUP BY 1, 2`,
    [namespaceId]);
  await tx.query(
    `INSERT INTO quotanamespaceblob (namespace_id, blob_id, refcount)
     SELECT $1, q.blob_id, count(*) FROM quotarepositoryblob q WHERE q.repository_id IN (${repositories}) GROUP BY q.blob_id`,
    [namespaceId]);
  await tx.query(
    `INSERT INTO quotarepositorysize (repository_id, size_bytes, backfill_start_ms, backfill_complete)
     SELECT r.id, COALESCE(sum(s.image_size), 0), $2, true
     FROM repository r LEFT JOIN quotarepositoryblob q ON q.repository_id = r.id LEFT JOIN imagestorage s ON s.id = q.blob_id
     WHERE r.namespace_user_id = $1 GROUP BY r.id
     ON CONFLICT (repository_id) DO UPDATE SET size_bytes = EXCLUDED.size_bytes, backfill_start_ms = EXCLUDED.backfill_start_ms, backfill_complete = true`,
    [namespaceId, nowMs]);
  await tx.query(
    `INSERT INTO quotanamespacesize (namespace_user_id, size_bytes, backfill_start_ms, backfill_complete, backfill_queued_ms)
     SELECT $1, COALESCE(sum(s.image_size), 0), $2, true, NULL FROM quotanamespaceblob q JOIN imagestorage s ON s.id = q.blob_id WHERE q.namespace_id = $1
     ON CONFLICT (namespace_user_id) DO UPDATE SET size_bytes = EXCLUDED.size_bytes, backfill_start_ms = EXCLUDED.backfill_start_ms,
       backfill_complete = true, backfill_queued_ms = NULL`,
    [namespaceId, nowMs]);
}

/**
 * Records up to `limit` namespaces that need a backfill and were not seen yet: namespaces with
 * manifests and no totals row get a waiting row, waiting rows (totals marked stale) get their
 * queue time. Returns how many were recorded.
 */
export async function queueNamespacesNeedingBackfill(db: Queryable, nowMs: number, limit: number): Promise<number> {
  const inserted = await db.query(
    `INSERT INTO quotanamespacesize (namespace_user_id, size_bytes, backfill_complete, backfill_queued_ms)
     SELECT n.id, 0, false, $1 FROM namespace n
     WHERE NOT n.robot AND NOT n.deleted
       AND NOT EXISTS (SELECT 1 FROM quotanamespacesize s WHERE s.namespace_user_id = n.id)
       AND EXISTS (SELECT 1 FROM repository r JOIN manifest m ON m.repository_id = r.id WHERE r.namespace_user_id = n.id)
     ORDER BY n.id LIMIT $2
     ON CONFLICT (namespace_user_id) DO NOTHING`, [nowMs, limit]);
  const stale = await db.query(
    `UPDATE quotanamespacesize SET backfill_queued_ms = $1
     WHERE namespace_user_id IN (SELECT namespace_user_id FROM quotanamespacesize
                                 WHERE NOT backfill_complete AND backfill_queued_ms IS NULL ORDER BY namespace_user_id LIMIT $2)`,
    [nowMs, limit]);
  return (inserted.rowCount ?? 0) + (stale.rowCount ?? 0);
}

/** Namespaces (id and name) whose backfill is due (queued at least `delayMs` ago), oldest first. */
export async function namespacesDueForBackfill(db: Queryable, nowMs: number, delayMs: number, limit: number): Promise<{ id: number; name: string }[]> {
  const { rows } = await db.query<{ id: number; name: string }>(
    `SELECT s.namespace_user_id AS id, n.username AS name FROM quotanamespacesize s JOIN namespace n ON n.id = s.namespace_user_id
     WHERE NOT s.backfill_complete AND s.backfill_queued_ms IS NOT NULL AND s.backfill_queued_ms <= $1 AND NOT n.deleted
     ORDER BY s.backfill_queued_ms, s.namespace_user_id LIMIT $2`, [nowMs - delayMs, limit]);
  return rows;
}
