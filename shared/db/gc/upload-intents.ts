/**
 * Resolving upload commit intents (`shared/db/upload-intents.ts`) whose push died between moving
 * its bytes to the content address and committing the rows. Per batch, in one transaction: claim
 * intents past `resolve_after` (SKIP LOCKED, so resolvers run in parallel), try each digest's push
 * lock (never wait; a busy digest is being pushed and is left for the next pass), and delete the
 * object unless a placement of that digest at that location exists; then drop the intents whose
 * object is settled. A storage error keeps its intent for the next pass.
 */
import type { Pool, Queryable } from '../pool.ts';
import { withTransaction } from '../pool.ts';
import { EMPTY_LAYER_DIGEST, PENDING_BATCH } from './constants.ts';
import { tryLockBlobDigests } from './locks.ts';
import type { BlobStores } from './pending-deletions.ts';
import type { GcListener } from './tally.ts';

/** What one resolution pass did. */
export interface IntentResult {
  /** Intents dropped because their blob is recorded at that location (the push committed after all). */
  kept: number;
  /** Objects deleted (the push died) and their bytes. */
  deleted: number;
  bytes: number;
  /** Intents whose digest a push held, or whose delete failed: left for the next pass. */
  busy: number;
  failed: number;
}

interface IntentRow {
  id: number;
  location: string;
  location_id: number;
  content_checksum: string;
  object_key: string;
  size_bytes: number;
}

/** Resolves every intent past its `resolve_after` (at most `limit`), batch by batch. */
export async function resolveUploadIntents(
  pool: Pool, stores: BlobStores, options: { limit?: number; batchSize?: number; listener?: GcListener; signal?: AbortSignal } = {},
): Promise<IntentResult> {
  const total: IntentResult = { kept: 0, deleted: 0, bytes: 0, busy: 0, failed: 0 };
  const batch = options.batchSize ?? PENDING_BATCH;
  let budget = options.limit ?? 10_000;
  // The cursor visits each intent once per pass, so a busy or failing one is not retried in a loop.
  let cursor = 0;
  while (budget > 0 && !options.signal?.aborted) {
    const take = Math.min(batch, budget);
    const outcome = await withTransaction(pool, (tx) => resolveBatch(tx, stores, cursor, take));
    budget -= outcome.claimed;
    cursor = outcome.cursor;
    for (const key of ['kept', 'deleted', 'bytes', 'busy', 'failed'] as const) total[key] += outcome.result[key];
    options.listener?.objectsDeleted(outcome.result.deleted, outcome.result.bytes);
    if (outcome.claimed < take) break;
  }
  return total;
}

async function resolveBatch(tx: Queryable, stores: BlobStores, afterId: number, take: number): Promise<{ claimed: number; cursor: number; result: IntentResult }> {
  const result: IntentResult = { kept: 0, deleted: 0, bytes: 0, busy: 0, failed: 0 };
  const { rows } = await tx.query<IntentRow>(
    `SELECT i.id, l.name AS location, i.location_id, i.content_checksum, i.object_key, i.size_bytes
       FROM uploadcommitintent i JOIN imagestoragelocation l ON l.id = i.location_id
      WHERE i.id > $1 AND i.resolve_after <= now()
      ORDER BY i.id LIMIT $2 FOR UPDATE OF i SKIP LOCKED`, [afterId, take]);
  if (rows.length === 0) return { claimed: 0, cursor: afterId, result };
  const held = await tryLockBlobDigests(tx, rows.map((r) => r.content_checksum));
  const locked = rows.filter((r) => held.has(r.content_checksum));
  result.busy = rows.length - locked.length;
  const { rows: placed } = await tx.query<{ content_checksum: string; location_id: number }>(
    `SELECT s.content_checksum, p.location_id FROM imagestorage s JOIN imagestorageplacement p ON p.storage_id = s.id
      WHERE s.content_checksum = ANY($1::text[])`, [[...held]]);
  const recorded = new Set(placed.map((p) => `${p.location_id}/${p.content_checksum}`));
  const keep = locked.filter((r) => recorded.has(`${r.location_id}/${r.content_checksum}`) || r.content_checksum === EMPTY_LAYER_DIGEST);
  const doomed = locked.filter((r) => !keep.includes(r));
  const settled: IntentRow[] = [...keep];
  for (const [location, group] of groupByLocation(doomed)) {
    try {
      const outcome = await stores.store(location).deleteMany(group.map((r) => r.object_key));
      const gone = new Set(outcome.deleted);
      for (const row of group) {
        if (!gone.has(row.object_key)) continue;
        settled.push(row);
        result.deleted += 1;
        result.bytes += Number(row.size_bytes);
      }
      result.failed += group.length - group.filter((r) => gone.has(r.object_key)).length;
    } catch {
      result.failed += group.length; // an unknown location or an unreachable backend: next pass
    }
  }
  result.kept = keep.length;
  await tx.query(`DELETE FROM uploadcommitintent WHERE id = ANY($1::bigint[])`, [settled.map((r) => r.id)]);
  return { claimed: rows.length, cursor: rows[rows.length - 1]!.id, result };
}

function groupByLocation(rows: readonly IntentRow[]): Map<string, IntentRow[]> {
  const groups = new Map<string, IntentRow[]>();
  for (const row of rows) groups.set(row.location, [...(groups.get(row.location) ?? []), row]);
  return groups;
}

/** Intents not yet settled, and the object keys they cover per location (for the audit). */
export async function pendingUploadIntents(db: Queryable): Promise<{ location: string; object_key: string }[]> {
  const { rows } = await db.query<{ location: string; object_key: string }>(
    `SELECT l.name AS location, i.object_key FROM uploadcommitintent i JOIN imagestoragelocation l ON l.id = i.location_id`);
  return rows;
}
