/**
 * The registry total (reference §3.5): `SUM(imagestorage.image_size)` over every blob row,
 * computed on a superuser's request, one computation at a time, in the single `quotaregistrysize`
 * row (id 1). Quay keeps a `running` flag that a crashed worker leaves set for ever; here the
 * computation is one transaction holding an advisory lock, and "running" is read from that lock,
 * so a crash can only leave the request queued, which the next job or poll picks up.
 */
import { quotaregistrysize } from '../../../queues/quotaregistrysize.ts';
import { enqueueInTransaction } from '../outbox.ts';
import { withTransaction, type Pool, type Queryable } from '../pool.ts';

/** The advisory lock key of a running computation ('QRSZ'); a small constant so pg_locks shows it plainly. */
const RUNNING_KEY = 0x5152535a;
const ROW_ID = 1;

/** What Quay's API reports: `size_bytes`, `last_ran` (ms, null before the first run), `queued`, `running`. */
export interface RegistrySizeReport {
  readonly size_bytes: number;
  readonly last_ran: number | null;
  readonly queued: boolean;
  readonly running: boolean;
}

/** The registry total as last computed, and whether a computation is queued or running. */
export async function readRegistrySize(db: Queryable): Promise<RegistrySizeReport> {
  const { rows } = await db.query<{ size_bytes: number; completed_ms: number | null; queued: boolean; running: boolean }>(
    `SELECT s.size_bytes, s.completed_ms, s.queued,
            EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = $2 AND objsubid = 1
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS running
     FROM (SELECT 1) one LEFT JOIN quotaregistrysize s ON s.id = $1`, [ROW_ID, RUNNING_KEY]);
  const row = rows[0]!;
  return { size_bytes: row.size_bytes ?? 0, last_ran: row.completed_ms ?? null, queued: row.queued ?? false, running: row.running };
}

/**
 * Queues a computation (Quay's queue_registry_size_calculation): returns `alreadyQueued` when one
 * is queued or running. The `quotaregistrysize` job is enqueued through the outbox either way
 * (its dedupe id makes a live job absorb it), so a request lost with Redis is re-created.
 */
export async function requestRegistrySize(pool: Pool): Promise<{ alreadyQueued: boolean }> {
  const running = (await readRegistrySize(pool)).running;
  return withTransaction(pool, async (tx) => {
    await tx.query(
      `INSERT INTO quotaregistrysize (id, size_bytes, running, queued) VALUES ($1, 0, false, false) ON CONFLICT (id) DO NOTHING`, [ROW_ID]);
    const { rows } = await tx.query<{ queued: boolean }>(`SELECT queued FROM quotaregistrysize WHERE id = $1 FOR UPDATE`, [ROW_ID]);
    await tx.query(`UPDATE quotaregistrysize SET queued = true WHERE id = $1`, [ROW_ID]);
    await enqueueInTransaction(tx, quotaregistrysize, { v: 1 });
    return { alreadyQueued: running || rows[0]!.queued };
  });
}

/**
 * Runs a queued computation: `computed` with the total, `idle` when nothing is queued, `busy`
 * when another computation holds the lock (one at a time).
 */
export async function computeRegistrySize(pool: Pool, nowMs = Date.now()): Promise<{ outcome: 'computed' | 'idle' | 'busy'; sizeBytes?: number }> {
  // Polls find nothing queued most of the time: they must not show as "running".
  if (!(await readRegistrySize(pool)).queued) return { outcome: 'idle' };
  return withTransaction(pool, async (tx) => {
    const { rows: lock } = await tx.query<{ locked: boolean }>(`SELECT pg_try_advisory_xact_lock($1::bigint) AS locked`, [RUNNING_KEY]);
    if (!lock[0]!.locked) return { outcome: 'busy' as const };
    const { rows } = await tx.query<{ queued: boolean }>(`SELECT queued FROM quotaregistrysize WHERE id = $1`, [ROW_ID]);
    if (!rows[0]?.queued) return { outcome: 'idle' as const };
    const total = await tx.query<{ size: number }>(`SELECT COALESCE(sum(image_size), 0)::bigint AS size FROM imagestorage`);
    const sizeBytes = total.rows[0]!.size;
    await tx.query(
      `UPDATE quotaregistrysize SET size_bytes = $2, completed_ms = $3, queued = false, running = false WHERE id = $1`,
      [ROW_ID, sizeBytes, nowMs]);
    return { outcome: 'computed' as const, sizeBytes };
  });
}
