/**
 * The safety net behind event-driven GC (every GARBAGE_COLLECTION_FREQUENCY seconds): finds the
 * repositories with garbage the events missed (tags past the window after a time machine change,
 * expired leases, manifests nothing uses) and blobs nothing references, each query bounded.
 *
 * The two table scans (manifests, blobs) look at one id window per tick, chosen from the clock,
 * so consecutive ticks walk the whole table without any stored cursor and any replica may run
 * any tick.
 */
import type { Queryable } from '../pool.ts';
import { orphanPredicate } from './blobs.ts';

/** Which slice of an id space a tick scans. */
export interface IdWindow {
  /** Exclusive lower bound. */
  readonly afterId: number;
  /** Inclusive upper bound. */
  readonly toId: number;
}

/** The id window tick number `tick` scans in a table whose largest id is `maxId`. */
export function idWindow(maxId: number, windowSize: number, tick: number): IdWindow {
  const windows = Math.max(1, Math.ceil(maxId / windowSize));
  const index = ((tick % windows) + windows) % windows;
  return { afterId: index * windowSize, toId: (index + 1) * windowSize };
}

/** The query of repositoriesWithExpiredGarbage ($1 now in ms, $2 limit); bench/gc-plan explains it. */
export const EXPIRED_GARBAGE_SQL = `SELECT id FROM (
       SELECT DISTINCT t.repository_id AS id
         FROM (SELECT DISTINCT removed_tag_expiration_s AS window_s FROM namespace WHERE NOT deleted) w
         CROSS JOIN LATERAL (
           SELECT t.repository_id FROM tag t WHERE t.lifetime_end_ms <= $1::bigint - w.window_s * 1000) t
         JOIN repository r ON r.id = t.repository_id
         JOIN namespace n ON n.id = r.namespace_user_id AND n.removed_tag_expiration_s = w.window_s
        WHERE r.state <> 3 AND NOT n.deleted
       UNION
       SELECT DISTINCT ub.repository_id FROM uploadedblob ub
         JOIN repository r ON r.id = ub.repository_id JOIN namespace n ON n.id = r.namespace_user_id
        WHERE ub.expires_at <= to_timestamp($1::float8 / 1000) AND r.state <> 3 AND NOT n.deleted
     ) g ORDER BY id LIMIT $2`;

/**
 * Repositories (not marked for deletion, namespace live) having a tag past their namespace's time
 * machine or an expired upload lease, lowest ids first, at most `limit`.
 *
 * The cost follows what is due, not the tag history: a tag's cutoff depends on its namespace's
 * window, which no index on `tag` can hold, so filtering `lifetime_end_ms <= now - window` per row
 * read every ended tag each tick (1M history rows: a sequential scan of the table). Instead, per
 * distinct window in use (a handful: Quay's TAG_EXPIRATION_OPTIONS), a range scan of the
 * `tag_end` index reads only the tags ended before that window's cutoff, and the namespace join
 * keeps those whose namespace has that window. GC deletes tags once past the window, so that
 * range holds the tags due now (plus, under the smallest window, older tags of namespaces with a
 * longer one).
 */
export async function repositoriesWithExpiredGarbage(db: Queryable, nowMs: number, limit: number): Promise<number[]> {
  // Unnamed: planned with this tick's `now`, so the index range is costed for the actual cutoff.
  const { rows } = await db.query<{ id: number }>(EXPIRED_GARBAGE_SQL, [nowMs, limit]);
  return rows.map((r) => r.id);
}

/**
 * Repositories having, in the manifest id window, a manifest no tag row, no parent and no referrer
 * uses (an orphan the events cannot see, e.g. left by a failed push).
 */
export async function repositoriesWithOrphanManifests(db: Queryable, window: IdWindow): Promise<number[]> {
  const { rows } = await db.query<{ id: number }>(
    `SELECT DISTINCT m.repository_id AS id FROM manifest m
       JOIN repository r ON r.id = m.repository_id JOIN namespace n ON n.id = r.namespace_user_id
      WHERE m.id > $1 AND m.id <= $2 AND r.state <> 3 AND NOT n.deleted
        AND NOT EXISTS (SELECT 1 FROM tag t WHERE t.manifest_id = m.id)
        AND NOT EXISTS (SELECT 1 FROM manifestchild c WHERE c.child_manifest_id = m.id)
        AND NOT EXISTS (SELECT 1 FROM manifest x WHERE x.repository_id = m.repository_id AND x.subject = m.digest AND x.id <> m.id)
      ORDER BY 1`, [window.afterId, window.toId]);
  return rows.map((r) => r.id);
}

/** Blobs in the imagestorage id window that nothing references (left by a crash or a busy digest). */
export async function orphanBlobIds(db: Queryable, window: IdWindow, nowMs: number): Promise<number[]> {
  const { rows } = await db.query<{ id: number }>(
    `SELECT s.id FROM imagestorage s WHERE s.id > $1 AND s.id <= $3 AND ${orphanPredicate('$2')} ORDER BY s.id`,
    [window.afterId, nowMs, window.toId]);
  return rows.map((r) => r.id);
}

/** Largest id of `table` ('manifest' or 'imagestorage'), 0 when empty. */
export async function maxId(db: Queryable, table: 'manifest' | 'imagestorage'): Promise<number> {
  const { rows } = await db.query<{ max: number | null }>(`SELECT max(id) AS max FROM ${table}`);
  return rows[0]?.max ?? 0;
}
