/**
 * Tag history for the Quay API: listing alive and ended tags, finding a manifest the time machine
 * can still restore, and permanently deleting (moving a tag out of the time machine window so the
 * next GC collects it). Tag moves and deletes themselves live in tags.ts.
 */
import { garbagecollection } from '../../queues/garbagecollection.ts';
import { enqueueInTransaction } from './outbox.ts';
import type { Queryable } from './pool.ts';

/** One row of a repository's tag history with its manifest. */
export interface TagHistoryRow {
  id: number;
  name: string;
  reversion: boolean;
  lifetime_start_ms: number;
  lifetime_end_ms: number | null;
  manifest_digest: string | null;
  media_type: string | null;
  layers_compressed_size: number | null;
}

/** Manifest list / image index media types (Quay's `is_manifest_list`). */
export const MANIFEST_LIST_MEDIA_TYPES: readonly string[] = [
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
];

/**
 * A page (1-based) of the visible tag history of a repository, newest first, as Quay's
 * list_repository_tag_history: `has_additional` tells whether another page follows.
 */
export async function listTagHistory(
  db: Queryable,
  input: { repositoryId: number; nowMs: number; page: number; limit: number; specificTag?: string; onlyActive: boolean },
): Promise<{ rows: TagHistoryRow[]; hasAdditional: boolean }> {
  const { rows } = await db.query<TagHistoryRow>(
    `SELECT t.id, t.name, t.reversion, t.lifetime_start_ms, t.lifetime_end_ms,
            m.digest AS manifest_digest, m.media_type, m.layers_compressed_size
     FROM tag t LEFT JOIN manifest m ON m.id = t.manifest_id
     WHERE t.repository_id = $1 AND NOT t.hidden AND ($2::text IS NULL OR t.name = $2)
       AND (NOT $3::boolean OR t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > $4)
     ORDER BY t.lifetime_start_ms DESC, t.id DESC
     LIMIT $5 OFFSET $6`,
    [input.repositoryId, input.specificTag ?? null, input.onlyActive, input.nowMs, input.limit + 1, (input.page - 1) * input.limit]);
  return { rows: rows.slice(0, input.limit), hasAdditional: rows.length > input.limit };
}

/**
 * The id of manifest `digest` of the repository when the time machine can still bring it back:
 * some tag row of it is alive or ended less than `windowS` seconds ago. Undefined otherwise.
 */
export async function findRestorableManifest(
  db: Queryable, input: { repositoryId: number; digest: string; nowMs: number; windowS: number },
): Promise<number | undefined> {
  const { rows } = await db.query<{ id: number }>(
    `SELECT m.id FROM manifest m WHERE m.repository_id = $1 AND m.digest = $2 AND EXISTS (
       SELECT 1 FROM tag t WHERE t.repository_id = $1 AND t.manifest_id = m.id
         AND (t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > $3::bigint - $4::bigint * 1000))`,
    [input.repositoryId, input.digest, input.nowMs, input.windowS]);
  return rows[0]?.id;
}

/** Marks the alive tag `name` as a reversion (restored by the time machine). */
export async function markReversion(tx: Queryable, input: { repositoryId: number; name: string; nowMs: number }): Promise<void> {
  await tx.query(
    `UPDATE tag SET reversion = true WHERE repository_id = $1 AND name = $2 AND NOT hidden
       AND (lifetime_end_ms IS NULL OR lifetime_end_ms > $3)`, [input.repositoryId, input.name, input.nowMs]);
}

/**
 * Moves the ended rows of tag `name` pointing at `manifestId` that are still inside the time
 * machine out of it (Quay's remove_tag_from_timemachine), so the next GC collects them. Each row
 * gets a distinct end below the window (the (repository, name, end) triple is unique). Returns how
 * many moved.
 */
export async function expireTagHistory(
  tx: Queryable, input: { repositoryId: number; name: string; manifestId: number; nowMs: number; windowS: number },
): Promise<number> {
  const { rowCount } = await tx.query(
    `WITH cutoff AS (SELECT $4::bigint - $5::bigint * 1000 AS ms),
     -- Below every end of this name already outside the window, so no two rows share an end.
     base AS (SELECT LEAST(cutoff.ms, COALESCE(min(t.lifetime_end_ms), cutoff.ms)) AS ms FROM cutoff
              LEFT JOIN tag t ON t.repository_id = $1 AND t.name = $2 AND t.lifetime_end_ms <= cutoff.ms GROUP BY cutoff.ms),
     doomed AS (
       SELECT t.id, row_number() OVER (ORDER BY t.id) AS n FROM tag t, cutoff
       WHERE t.repository_id = $1 AND t.name = $2 AND t.manifest_id = $3 AND NOT t.hidden
         AND t.lifetime_end_ms IS NOT NULL AND t.lifetime_end_ms <= $4 AND t.lifetime_end_ms > cutoff.ms)
     UPDATE tag t SET lifetime_end_ms = (SELECT ms FROM base) - doomed.n
     FROM doomed WHERE t.id = doomed.id`,
    [input.repositoryId, input.name, input.manifestId, input.nowMs, input.windowS]);
  return rowCount ?? 0;
}

/**
 * Schedules the `garbagecollection` job of a repository for the second its ended tags leave the
 * time machine (`dueAtS`; now for a permanent delete), through the outbox of the caller's transaction.
 */
export async function scheduleTagCollection(
  tx: Queryable, input: { repositoryId: number; namespace: string; repository: string; dueAtS: number },
): Promise<void> {
  await enqueueInTransaction(tx, garbagecollection, {
    v: 1, reason: 'tag_expired', repositoryId: input.repositoryId, dueAtS: input.dueAtS, namespace: input.namespace, repository: input.repository,
  }, { runAt: new Date(input.dueAtS * 1000) });
}
