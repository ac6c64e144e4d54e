/**
 * Namespace purge (the `namespacegc` job): marker-driven like Quay's `delete_namespace_via_marker`.
 * Marks every repository for deletion in one statement (PROJQUAY-11433), purges them one by one
 * under each repository's own GC lock (so it never races a `repositorygc` job on the same
 * repository), then deletes what the namespace owns (robots, teams; the rest cascades), the marker
 * and the namespace row in one transaction. The name stays reserved by the marker until then.
 */
import { withTransaction, type Pool } from '../pool.ts';
import { MAX_BATCH } from './constants.ts';
import { withGcLock } from './locks.ts';
import { purgeRepository, type PurgeOptions, type PurgeResult } from './purge-repository.ts';
import { GcTally } from './tally.ts';

/** Purges namespace `namespaceId` if its `deletednamespace` marker exists. Callers hold its GC lock. */
export async function purgeMarkedNamespace(pool: Pool, namespaceId: number, options: PurgeOptions): Promise<PurgeResult> {
  const { rows } = await pool.query<{ original_username: string }>(
    `SELECT original_username FROM deletednamespace WHERE namespace_id = $1`, [namespaceId]);
  if (!rows[0]) return { done: true, pendingIds: [] };
  await pool.query(`UPDATE namespace SET deleted = true, enabled = false WHERE id = $1 AND (NOT deleted OR enabled)`, [namespaceId]);
  await pool.query(`UPDATE repository SET state = 3 WHERE namespace_user_id = $1 AND state <> 3`, [namespaceId]);
  const pendingIds: number[] = [];
  const repositoriesDone = await purgeRepositories(pool, namespaceId, options, pendingIds);
  if (!repositoriesDone || stopped(options)) return { done: false, pendingIds };
  await deleteNamespace(pool, namespaceId, rows[0].original_username, options);
  return { done: true, pendingIds };
}

function stopped(options: PurgeOptions): boolean {
  return (options.signal?.aborted ?? false) || (options.deadlineMs !== undefined && Date.now() >= options.deadlineMs);
}

/**
 * Purges the namespace's repositories, a page at a time; a repository whose lock another job holds
 * (its own `repositorygc`) is skipped for now. True when none remains.
 */
async function purgeRepositories(pool: Pool, namespaceId: number, options: PurgeOptions, pendingIds: number[]): Promise<boolean> {
  let afterId = 0;
  let incomplete = false;
  for (;;) {
    const { rows } = await pool.query<{ id: number }>(
      `SELECT id FROM repository WHERE namespace_user_id = $1 AND id > $2 ORDER BY id LIMIT $3`, [namespaceId, afterId, MAX_BATCH]);
    if (rows.length === 0) return !incomplete;
    for (const { id } of rows) {
      if (stopped(options)) return false;
      const outcome = await withGcLock(pool, { repositoryId: id }, () => purgeRepository(pool, id, options));
      if (!outcome.locked || !outcome.value.done) incomplete = true;
      if (outcome.locked) pendingIds.push(...outcome.value.pendingIds);
    }
    afterId = rows[rows.length - 1]!.id;
  }
}

/** Robots, teams, the marker and the namespace row in one transaction; FK cascades take the rest. */
async function deleteNamespace(pool: Pool, namespaceId: number, originalName: string, options: PurgeOptions): Promise<void> {
  let counts = new GcTally();
  await withTransaction(pool, async (tx) => {
    counts = new GcTally();
    const current = await tx.query<{ username: string }>(`SELECT username FROM namespace WHERE id = $1 FOR UPDATE`, [namespaceId]);
    if (!current.rows[0]) return;
    // Robots are namespaces named `<owner>+<short>`; the owner may have been renamed at mark time.
    const robots = await tx.query<{ id: number }>(
      `SELECT id FROM namespace WHERE robot AND (left(username, length($1) + 1) = $1 || '+' OR left(username, length($2) + 1) = $2 || '+')`,
      [originalName, current.rows[0].username]);
    const robotIds = robots.rows.map((r) => r.id);
    await tx.query(`UPDATE repomirrorconfig SET internal_robot_id = NULL WHERE internal_robot_id = ANY($1::bigint[])`, [robotIds]);
    const deletedRobots = await tx.query(`DELETE FROM namespace WHERE id = ANY($1::bigint[])`, [robotIds]);
    counts.rowsDeleted('User', deletedRobots.rowCount ?? 0);
    await tx.query(`DELETE FROM team WHERE organization_id = $1`, [namespaceId]);
    const marker = await tx.query(`DELETE FROM deletednamespace WHERE namespace_id = $1`, [namespaceId]);
    counts.rowsDeleted('DeletedNamespace', marker.rowCount ?? 0);
    const namespace = await tx.query(`DELETE FROM namespace WHERE id = $1`, [namespaceId]);
    counts.rowsDeleted('User', namespace.rowCount ?? 0);
    if (namespace.rowCount) counts.namespacePurged();
  });
  if (options.listener) counts.replayInto(options.listener);
}
