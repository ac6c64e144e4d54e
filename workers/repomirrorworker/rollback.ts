/**
 * REPO_MIRROR_ROLLBACK: after a failed sync, the repository's tags go back to what they were
 * before it (Quay rolls back the tag history entries changed since the sync started: a moved or
 * deleted tag is re-pointed as a reversion, a created one deleted). Without rollback nothing is
 * undone: a tag whose copy failed never changed here, because each tag is stored in one
 * transaction, so Quay's "roll back only the failed tags" has nothing left to do.
 */
import { withTransaction, type Pool, type Queryable } from '../../shared/db/pool.ts';
import { markReversion } from '../../shared/db/tag-history.ts';
import { endTag, setTag, type EndedTag } from '../../shared/db/tags.ts';
import { scheduleCollection, type MirrorTarget } from './store.ts';

/** Alive visible tags before a sync: name -> manifest id. */
export type TagSnapshot = ReadonlyMap<string, number>;

/** The repository's alive, visible tags now. */
export async function snapshotTags(db: Queryable, repositoryId: number): Promise<TagSnapshot> {
  const { rows } = await db.query<{ name: string; manifest_id: number }>(
    `SELECT name, manifest_id FROM tag WHERE repository_id = $1 AND NOT hidden AND (lifetime_end_ms IS NULL OR lifetime_end_ms > $2)`,
    [repositoryId, Date.now()]);
  return new Map(rows.map((r) => [r.name, r.manifest_id]));
}

/**
 * Restores `snapshot`: tags created since are ended, moved or deleted ones re-pointed (one
 * transaction); the tag rows it ends get their GC job, as any other tag the sync ends, so what the
 * failed sync brought in is collected once it leaves the time machine.
 */
export async function rollbackTags(deps: { db: Pool }, target: MirrorTarget, snapshot: TagSnapshot): Promise<void> {
  const { repository } = target;
  await withTransaction(deps.db, async (tx) => {
    const nowMs = Date.now();
    const current = await snapshotTags(tx, repository.id);
    const ended: EndedTag[] = [];
    for (const name of current.keys()) {
      if (!snapshot.has(name)) ended.push(...await endTag(tx, { repositoryId: repository.id, name, nowMs }));
    }
    for (const [name, manifestId] of snapshot) {
      if (current.get(name) === manifestId) continue;
      const moved = await setTag(tx, { repositoryId: repository.id, name, manifestId, nowMs });
      ended.push(...moved.ended);
      if (!moved.unchanged) await markReversion(tx, { repositoryId: repository.id, name, nowMs });
    }
    await scheduleCollection(tx, repository, ended);
  });
}
