/**
 * The running totals themselves (Quay's `quotanamespacesize` / `quotarepositorysize`): their
 * state, the atomic increments, marking them stale, and starting the totals of a new namespace.
 * Invariant kept by every writer: while a namespace's total is complete, every total of its
 * repositories is complete or absent (absent reads as 0), and the reference counts match.
 */
import type { Queryable } from '../pool.ts';
import type { SizeDeltas } from './references.ts';

/** Where a namespace's totals stand: no row; a row the backfill still has to compute; maintained. */
export type TotalsState = 'missing' | 'waiting' | 'complete';

/** The state of namespace `namespaceId`'s totals as of now (no lock taken). */
export async function namespaceTotalsState(db: Queryable, namespaceId: number): Promise<TotalsState> {
  const { rows } = await db.query<{ complete: boolean }>(
    `SELECT backfill_complete AS complete FROM quotanamespacesize WHERE namespace_user_id = $1`, [namespaceId]);
  if (!rows[0]) return 'missing';
  return rows[0].complete ? 'complete' : 'waiting';
}

/**
 * Adds `deltas` to the repository's and namespace's totals if the namespace's totals are complete
 * (re-checked in this statement, which runs after the caller took the quota lock). Returns the
 * namespace total afterwards, or undefined when the totals are not maintained. The increments are
 * single-row atomic updates: concurrent callers serialize on the row and never lose an update.
 */
export async function applyDeltas(
  tx: Queryable, target: { namespaceId: number; repositoryId: number }, deltas: SizeDeltas,
): Promise<number | undefined> {
  const { rows } = await tx.query<{ complete: boolean; after: number | null; current: number | null }>(
    `WITH state AS (SELECT backfill_complete AS complete, size_bytes FROM quotanamespacesize WHERE namespace_user_id = $1),
     repo_add AS (
       INSERT INTO quotarepositorysize AS q (repository_id, size_bytes, backfill_start_ms, backfill_complete)
       SELECT $2, $3, 0, true FROM state WHERE state.complete AND $3::bigint > 0
       ON CONFLICT (repository_id) DO UPDATE SET size_bytes = q.size_bytes + EXCLUDED.size_bytes),
     repo_sub AS (
       UPDATE quotarepositorysize SET size_bytes = size_bytes + $3
       WHERE repository_id = $2 AND $3::bigint < 0 AND EXISTS (SELECT 1 FROM state WHERE complete)),
     ns AS (
       UPDATE quotanamespacesize SET size_bytes = size_bytes + $4
       WHERE namespace_user_id = $1 AND backfill_complete AND $4::bigint <> 0 RETURNING size_bytes)
     SELECT COALESCE((SELECT complete FROM state), false) AS complete, (SELECT size_bytes FROM ns) AS after,
            (SELECT size_bytes FROM state) AS current`,
    [target.namespaceId, target.repositoryId, deltas.repositoryBytes, deltas.namespaceBytes]);
  const row = rows[0]!;
  if (!row.complete) return undefined;
  return row.after ?? row.current ?? 0;
}

/**
 * Marks namespace `namespaceId`'s totals and its repositories' stale (size 0, not started, not
 * complete), as Quay's reset_backfill does when a push happens with quota management off, so the
 * backfill recomputes them when it is back on. Call holding the exclusive quota lock. Returns
 * whether anything was complete or started before.
 */
export async function markNamespaceStale(tx: Queryable, namespaceId: number): Promise<boolean> {
  const namespace = await tx.query(
    `UPDATE quotanamespacesize SET size_bytes = 0, backfill_start_ms = NULL, backfill_complete = false, backfill_queued_ms = NULL
     WHERE namespace_user_id = $1 AND (backfill_complete OR backfill_start_ms IS NOT NULL)`, [namespaceId]);
  await tx.query(
    `UPDATE quotarepositorysize q SET size_bytes = 0, backfill_start_ms = NULL, backfill_complete = false
     FROM repository r WHERE r.id = q.repository_id AND r.namespace_user_id = $1 AND (q.backfill_complete OR q.backfill_start_ms IS NOT NULL)`,
    [namespaceId]);
  return (namespace.rowCount ?? 0) > 0;
}

/**
 * Whether namespace `namespaceId` has a manifest other than `manifestId` (committed, or written
 * earlier in this transaction). Quay's "only manifest" test: a namespace whose first manifest is
 * being pushed can start its totals at once instead of waiting for the backfill.
 */
export async function namespaceHasOtherManifests(tx: Queryable, namespaceId: number, manifestId: number): Promise<boolean> {
  const { rows } = await tx.query<{ found: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM repository r JOIN manifest m ON m.repository_id = r.id
                    WHERE r.namespace_user_id = $1 AND m.id <> $2) AS found`, [namespaceId, manifestId]);
  return rows[0]!.found;
}

/**
 * Creates namespace `namespaceId`'s total as complete and empty (its first manifest's blobs are
 * then added as a running update). Call holding the exclusive quota lock, after checking that the
 * namespace has no other manifest; returns false when a row already exists.
 */
export async function startNamespaceTotals(tx: Queryable, namespaceId: number): Promise<boolean> {
  const result = await tx.query(
    `INSERT INTO quotanamespacesize (namespace_user_id, size_bytes, backfill_start_ms, backfill_complete)
     VALUES ($1, 0, 0, true) ON CONFLICT (namespace_user_id) DO NOTHING`, [namespaceId]);
  if ((result.rowCount ?? 0) === 0) return false;
  // Leftovers of an earlier life of the namespace's repositories would break the invariant.
  await tx.query(`DELETE FROM quotarepositorysize WHERE repository_id IN (SELECT id FROM repository WHERE namespace_user_id = $1)`, [namespaceId]);
  await tx.query(`DELETE FROM quotarepositoryblob WHERE repository_id IN (SELECT id FROM repository WHERE namespace_user_id = $1)`, [namespaceId]);
  await tx.query(`DELETE FROM quotanamespaceblob WHERE namespace_id = $1`, [namespaceId]);
  return true;
}
