/**
 * Transaction-scoped Postgres advisory locks. They are released by COMMIT or ROLLBACK, so a crashed
 * holder can never leave a lock behind (unlike a Redis lock with a TTL that may expire mid-work).
 */
import type { Queryable } from './pool.ts';

/**
 * Serializes the push path and the storage-deletion path for one blob digest (invariant 1).
 * The push holds it from writing the final object until its rows commit; GC holds it while it
 * re-checks that no row references the digest and deletes the object. Call inside a transaction.
 */
export async function lockBlobDigest(tx: Queryable, digest: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('blobdigest:' || $1, 0))`, [digest]);
}

/** Like lockBlobDigest but returns false at once when another transaction holds the lock. */
export async function tryLockBlobDigest(tx: Queryable, digest: string): Promise<boolean> {
  const { rows } = await tx.query<{ locked: boolean }>(
    `SELECT pg_try_advisory_xact_lock(hashtextextended('blobdigest:' || $1, 0)) AS locked`, [digest]);
  return rows[0]!.locked;
}

/** Serializes quota accounting for one namespace (pushes and GC in the same namespace). */
export async function lockNamespaceQuota(tx: Queryable, namespaceId: number): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('quota:' || $1::text, 0))`, [namespaceId]);
}
