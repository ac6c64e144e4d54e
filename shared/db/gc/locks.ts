/**
 * Locks of GC and purges.
 *
 * - One collection or purge per repository at a time, one purge per namespace: session-level
 *   Postgres advisory locks held on a dedicated connection for the length of the job. A crashed or
 *   SIGKILLed holder loses its connection and Postgres drops the lock with it, so no TTL can expire
 *   in the middle of long work (Quay's Redis locks have exactly that failure, §7) and no lock
 *   outlives its holder.
 * - Blob digests: the push path's transaction-scoped lock (`shared/db/locks.ts`), tried for many
 *   digests in one round trip here.
 */
import type { Pool, Queryable } from '../pool.ts';

/** What a per-target lock protects: GC and purges of a repository share one key on purpose. */
export type GcLockTarget = { repositoryId: number } | { namespaceId: number };

function lockName(target: GcLockTarget): string {
  return 'repositoryId' in target ? `gcrepo:${target.repositoryId}` : `gcnamespace:${target.namespaceId}`;
}

/**
 * Runs `fn` while holding the target's lock; resolves `{ locked: false }` at once (without
 * running `fn`) when another process holds it. The lock is released when `fn` settles.
 */
export async function withGcLock<T>(pool: Pool, target: GcLockTarget, fn: () => Promise<T>): Promise<{ locked: true; value: T } | { locked: false }> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const { rows } = await client.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked`, [lockName(target)]);
    if (!rows[0]!.locked) return { locked: false };
    try {
      return { locked: true, value: await fn() };
    } finally {
      await client.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [lockName(target)])
        .catch((error: Error) => { broken = error; });
    }
  } finally {
    // A connection whose unlock failed is destroyed, which releases the lock server-side.
    client.release(broken ?? false);
  }
}

/**
 * Tries the push path's per-digest lock (`lockBlobDigest`) for every digest in one query, inside
 * the caller's transaction; returns the digests now held. The key expression must stay identical
 * to `shared/db/locks.ts` (a test checks both against each other). Trying never waits, so GC can
 * neither deadlock with a push nor stall behind a slow one: a busy digest is being pushed and is
 * left for a later pass.
 */
export async function tryLockBlobDigests(tx: Queryable, digests: readonly string[]): Promise<Set<string>> {
  if (digests.length === 0) return new Set();
  const { rows } = await tx.query<{ digest: string; locked: boolean }>(
    `SELECT d AS digest, ${tryLockDigestSql('d')} AS locked FROM unnest($1::text[]) AS u(d)`, [[...new Set(digests)]]);
  return new Set(rows.filter((r) => r.locked).map((r) => r.digest));
}

/**
 * The SQL expression trying the push path's digest lock for the digest in column `column`, for
 * statements that take the locks of the rows they read in the same round trip. A lock taken
 * twice in one transaction is held once more, harmlessly, until it ends.
 */
export function tryLockDigestSql(column: string): string {
  return `pg_try_advisory_xact_lock(hashtextextended('blobdigest:' || ${column}, 0))`;
}
