/**
 * What GC would collect, as SQL: the one definition the real run (per repository) and the dry run
 * (any scope) share, so "the dry run equals the real run" holds by construction and is tested.
 *
 * Rules (reference §2.1–2.4, quayfleet's choices in the README):
 * - a tag is garbage when it ended at or before `now - removed_tag_expiration_s` of its namespace;
 * - a manifest is live when a non-garbage tag row (alive, ended within the window, or hidden)
 *   points to it, or a live manifest of its repository names it as child or as `subject`
 *   (referrer); every other manifest of the repository is garbage;
 * - an upload lease is garbage once `expires_at <= now`;
 * - a blob is freed when every manifest linking it and every lease on it is garbage, it has a
 *   placement and it is not the empty layer.
 *
 * Repositories marked for deletion and namespaces being deleted are the purges' business.
 */
import type { Pool, Queryable } from '../pool.ts';
import { EMPTY_LAYER_DIGEST } from './constants.ts';

/**
 * Parameters of every statement built here: $1 namespace id or null, $2 repository id or null,
 * $3 now in ms, $4 whether to ignore the time machine (every ended tag counts as garbage).
 */
export type PlanParams = [namespaceId: number | null, repositoryId: number | null, nowMs: number, ignoreTimeMachine: boolean];

/**
 * The CTEs `scope`, `garbage_tags`, `tagged` (manifests a live tag points at), `reached` (what
 * those name as child or subject, transitively), `garbage_manifests`, `garbage_leases` (WITH
 * RECURSIVE prefix included). `reached` starts from the tagged manifests that have a child or a
 * subject, not from every tagged one: the planner sizes the recursive UNION's hash table from its
 * row estimate, which for a start of every tag was ~16k rows, and allocating and clearing that
 * table each run cost 5-7 ms of backend CPU (perf: tuplehash_create) in a 1 ms survey.
 */
export const PLAN_CTES = `WITH RECURSIVE
scope AS (
  SELECT r.id, r.namespace_user_id AS namespace_id,
         CASE WHEN $4::boolean THEN $3::bigint ELSE $3::bigint - n.removed_tag_expiration_s * 1000 END AS cutoff_ms
    FROM repository r JOIN namespace n ON n.id = r.namespace_user_id
   WHERE r.state <> 3 AND NOT n.deleted
     AND ($1::bigint IS NULL OR n.id = $1) AND ($2::bigint IS NULL OR r.id = $2)),
garbage_tags AS (
  SELECT t.id, t.repository_id, t.manifest_id FROM tag t JOIN scope s ON s.id = t.repository_id
   WHERE t.lifetime_end_ms <= s.cutoff_ms),
tagged(id) AS (
  SELECT t.manifest_id FROM tag t JOIN scope s ON s.id = t.repository_id
   WHERE t.manifest_id IS NOT NULL AND (t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > s.cutoff_ms)),
reached(id) AS (
  SELECT c.child_manifest_id FROM manifestchild c WHERE c.manifest_id IN (SELECT id FROM tagged)
  UNION ALL
  SELECT subj.id FROM manifest r JOIN manifest subj ON subj.repository_id = r.repository_id AND subj.digest = r.subject
   WHERE r.id IN (SELECT id FROM tagged) AND r.subject IS NOT NULL
  UNION
  SELECT x.id FROM reached l CROSS JOIN LATERAL (
    SELECT c.child_manifest_id AS id FROM manifestchild c WHERE c.manifest_id = l.id
    UNION ALL
    SELECT subj.id FROM manifest r JOIN manifest subj ON subj.repository_id = r.repository_id AND subj.digest = r.subject
     WHERE r.id = l.id) x),
garbage_manifests AS (
  SELECT m.id, m.repository_id, m.digest, s.namespace_id FROM manifest m JOIN scope s ON s.id = m.repository_id
   WHERE NOT EXISTS (SELECT 1 FROM tagged WHERE tagged.id = m.id) AND NOT EXISTS (SELECT 1 FROM reached WHERE reached.id = m.id)),
garbage_leases AS (
  SELECT ub.id, ub.blob_id, ub.repository_id, s.namespace_id FROM uploadedblob ub JOIN scope s ON s.id = ub.repository_id
   WHERE ub.expires_at <= to_timestamp($3::float8 / 1000))`;

/**
 * Extra CTE `freed_blobs(id, content_checksum, image_size, namespace_id)` to append after
 * PLAN_CTES: blobs the plan frees, each attributed to the lowest namespace id whose garbage
 * releases it (so per-namespace bytes add up to the total without double counting).
 */
export const FREED_BLOBS_CTE = `,
candidates AS (
  SELECT mb.blob_id, g.namespace_id FROM manifestblob mb JOIN garbage_manifests g ON g.id = mb.manifest_id
  UNION ALL
  SELECT gl.blob_id, gl.namespace_id FROM garbage_leases gl),
freed_blobs AS (
  SELECT s.id, s.content_checksum, s.image_size, min(c.namespace_id) AS namespace_id
    FROM candidates c JOIN imagestorage s ON s.id = c.blob_id
   WHERE NOT EXISTS (SELECT 1 FROM manifestblob mb WHERE mb.blob_id = s.id
                      AND NOT EXISTS (SELECT 1 FROM garbage_manifests g WHERE g.id = mb.manifest_id))
     AND NOT EXISTS (SELECT 1 FROM uploadedblob ub WHERE ub.blob_id = s.id AND ub.expires_at > to_timestamp($3::float8 / 1000))
     AND EXISTS (SELECT 1 FROM imagestorageplacement p WHERE p.storage_id = s.id)
     AND s.content_checksum <> '${EMPTY_LAYER_DIGEST}'
     AND s.content_checksum ~ '^sha256:[0-9a-f]{64}$'
   GROUP BY s.id)`;

/**
 * Runs `fn` in a read-only transaction on one snapshot with JIT off: the planner's estimate for the
 * recursive `live` CTE is huge whatever the data, which makes Postgres spend seconds JIT-compiling
 * a query that runs in milliseconds.
 */
export async function inPlanSnapshot<T>(pool: Pool, fn: (db: Queryable) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await client.query('SET LOCAL jit = off');
    const value = await fn(client);
    await client.query('COMMIT');
    return value;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
