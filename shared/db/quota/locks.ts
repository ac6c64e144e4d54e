/**
 * The namespace quota lock, in two modes. Running updates (a push's or GC's transaction) hold it
 * shared from their quota step until they commit; whatever changes whether a namespace's totals
 * are maintained (the backfill, marking totals stale, creating the first totals of a namespace)
 * holds it exclusive. So a backfill never computes while a transaction that skipped or applied a
 * running update is still uncommitted, which is what makes the handoff between the two exact.
 * Both modes use the key of `lockNamespaceQuota` (shared/db/locks.ts), its exclusive form.
 */
import { lockNamespaceQuota } from '../locks.ts';
import type { Queryable } from '../pool.ts';
import type { TotalsState } from './totals.ts';

/** Takes the namespace's quota lock shared until the transaction ends (running updates). */
export async function lockNamespaceTotalsShared(tx: Queryable, namespaceId: number): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock_shared(hashtextextended('quota:' || $1::text, 0))`, [namespaceId]);
}

/** Takes the namespace's quota lock exclusive until the transaction ends (backfill, stale marking). */
export async function lockNamespaceTotalsExclusive(tx: Queryable, namespaceId: number): Promise<void> {
  await lockNamespaceQuota(tx, namespaceId);
}

/**
 * The push path's first step in one round trip: the namespace's totals state as of now, and the
 * shared lock taken when a totals row exists ('complete' or 'waiting'). For 'missing' no lock is
 * taken: the caller takes the exclusive one and reads the state again.
 */
export async function lockForRunningUpdate(tx: Queryable, namespaceId: number): Promise<TotalsState> {
  const { rows } = await tx.query<{ complete: boolean | null }>({
    name: 'quota-lock-running-update',
    text: `SELECT s.backfill_complete AS complete,
                  CASE WHEN s.namespace_user_id IS NOT NULL
                       THEN (SELECT true FROM pg_advisory_xact_lock_shared(hashtextextended('quota:' || $1::text, 0))) END AS locked
           FROM (SELECT 1) one LEFT JOIN quotanamespacesize s ON s.namespace_user_id = $1`,
    values: [namespaceId],
  });
  const complete = rows[0]!.complete;
  return complete === null ? 'missing' : complete ? 'complete' : 'waiting';
}
