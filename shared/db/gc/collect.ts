/**
 * Per-repository collection (the `garbagecollection` job), Quay's `garbage_collect_repo` made
 * set-based: garbage tags, then garbage manifests with their dependent rows, then expired upload
 * leases; every transaction that unlinks blobs also collects the blobs it orphaned, so a crash
 * between steps never strands an unreferenced blob row. Storage objects are only recorded here
 * (`pendingstoragedeletion`); `drainPendingDeletions` deletes them afterwards.
 */
import { withTransaction, type Pool, type Queryable } from '../pool.ts';
import { collectOrphanBlobs } from './blobs.ts';
import { MAX_BATCH } from './constants.ts';
import { deleteUnusedManifests, type RepositoryRef } from './manifests.ts';
import { PLAN_CTES, type PlanParams } from './plan.ts';
import { GcTally, type GcListener } from './tally.ts';

/** Options of one collection. */
export interface CollectOptions {
  /** Wall clock in ms (injectable for tests that move time). */
  readonly nowMs?: number;
  /** Receives committed deletions (the Prometheus listener in production). */
  readonly listener?: GcListener;
  /** Ids per statement, at most MAX_BATCH. */
  readonly batchSize?: number;
  /** Stops between batches; everything committed so far is consistent. */
  readonly signal?: AbortSignal;
}

/** What one collection did. */
export interface CollectResult {
  /** False when the repository is gone, marked for deletion, or its namespace is being deleted. */
  readonly found: boolean;
  readonly tags: number;
  readonly manifests: number;
  readonly leases: number;
  /** `imagestorage` rows deleted. */
  readonly blobs: number;
  /** Pending storage deletions this run recorded: drain them next. */
  readonly pendingIds: number[];
  /** Candidates still held by concurrent transactions after the retries; a later run or the sweep takes them. */
  readonly busy: number;
}

interface Target extends RepositoryRef {
  cutoffMs: number;
}

/** Collects the garbage of repository `repositoryId`. Callers hold its GC lock (`withGcLock`). */
export async function collectRepository(pool: Pool, repositoryId: number, options: CollectOptions = {}): Promise<CollectResult> {
  const nowMs = options.nowMs ?? Date.now();
  const batch = Math.min(options.batchSize ?? MAX_BATCH, MAX_BATCH);
  const target = await loadTarget(pool, repositoryId, nowMs);
  const run = new Run(pool, options.listener, options.signal);
  if (!target) return { found: false, ...run.result() };
  const garbage = await run.tags(target, batch, nowMs);
  await run.manifests(target, batch, nowMs, garbage);
  await run.leases(target, batch, nowMs);
  await run.retryBusyBlobs(nowMs);
  return { found: true, ...run.result() };
}

async function loadTarget(db: Queryable, repositoryId: number, nowMs: number): Promise<Target | undefined> {
  const { rows } = await db.query<{ id: number; namespace_id: number; window_s: number }>(
    `SELECT r.id, r.namespace_user_id AS namespace_id, n.removed_tag_expiration_s AS window_s
       FROM repository r JOIN namespace n ON n.id = r.namespace_user_id
      WHERE r.id = $1 AND r.state <> 3 AND NOT n.deleted`, [repositoryId]);
  const row = rows[0];
  return row && { id: row.id, namespaceId: row.namespace_id, cutoffMs: nowMs - row.window_s * 1000 };
}

/** The state of one collection: committed counts and pending deletions. */
class Run {
  readonly counts: GcTally;
  private pendingIds: number[] = [];
  private busy = 0;
  private readonly busyBlobIds = new Set<number>();

  constructor(private readonly pool: Pool, listener: GcListener | undefined, private readonly signal: AbortSignal | undefined) {
    this.counts = new GcTally(listener);
  }

  result(): Omit<CollectResult, 'found'> {
    const c = this.counts;
    return {
      tags: c.count('Tag'), manifests: c.count('Manifest'), leases: c.count('UploadedBlob'), blobs: c.count('ImageStorage'),
      pendingIds: this.pendingIds, busy: this.busy + this.busyBlobIds.size,
    };
  }

  /** Runs `fn` in a transaction and replays its counts only once it committed. */
  private async commit<T>(fn: (tx: Queryable, counts: GcTally) => Promise<T>): Promise<T> {
    let counts = new GcTally();
    const value = await withTransaction(this.pool, (tx) => {
      counts = new GcTally(); // a retried attempt starts from zero
      return fn(tx, counts);
    });
    counts.replayInto(this.counts);
    return value;
  }

  private get stopped(): boolean {
    return this.signal?.aborted ?? false;
  }

  /**
   * Deletes tags past the time machine, a batch per transaction, re-checking the cutoff under
   * lock; the first transaction also evaluates the plan (its garbage manifests, returned), which
   * already counts those tags as gone. These commits need not wait for the disk: losing one in a
   * crash only brings garbage tags back, and the manifest transaction's synchronous commit
   * flushes them before anything depends on them.
   */
  async tags(target: Target, batch: number, nowMs: number): Promise<number[]> {
    let garbage: number[] | undefined;
    for (let deleted = batch; deleted === batch && !this.stopped;) {
      const outcome = await this.commit(async (tx, counts) => {
        await tx.query(`SELECT set_config('synchronous_commit', 'off', true), set_config('jit', 'off', true)`);
        const planned = garbage ?? await garbageManifestIdsIn(tx, target.id, nowMs);
        const { rows } = await tx.query<{ id: number }>(
          `SELECT id FROM tag WHERE repository_id = $1 AND lifetime_end_ms <= $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED`,
          [target.id, target.cutoffMs, batch]);
        const ids = rows.map((r) => r.id);
        if (ids.length > 0) counts.rowsDeleted('Tag', await deleteTags(tx, ids));
        return { planned, deleted: ids.length };
      });
      garbage = outcome.planned;
      deleted = outcome.deleted;
    }
    return garbage ?? [];
  }

  /**
   * Deletes the plan's garbage manifests in passes: a child or subject only becomes unused once
   * its parent or referrer is gone, so each pass retries what the previous one left; a pass that
   * deletes nothing ends the loop (Quay's purge once looped forever here, §7).
   */
  async manifests(target: Target, batch: number, nowMs: number, garbage: number[]): Promise<void> {
    let remaining = garbage;
    while (remaining.length > 0 && !this.stopped) {
      const deleted = new Set<number>();
      let lockedOut = 0;
      for (let i = 0; i < remaining.length && !this.stopped; i += batch) {
        const chunk = remaining.slice(i, i + batch);
        const outcome = await this.commit(async (tx, counts) => {
          const manifests = await deleteUnusedManifests(tx, target, chunk, { counts });
          const blobs = await collectOrphanBlobs(tx, manifests.blobIds, { nowMs, counts });
          return { manifests, blobs };
        });
        outcome.manifests.deleted.forEach((id) => deleted.add(id));
        this.pendingIds.push(...outcome.blobs.pendingIds);
        outcome.blobs.busyIds.forEach((id) => this.busyBlobIds.add(id));
        lockedOut += outcome.manifests.busy;
      }
      remaining = remaining.filter((id) => !deleted.has(id));
      if (deleted.size === 0) {
        this.busy += lockedOut;
        break;
      }
    }
  }

  /** Deletes the repository's expired upload leases and collects the blobs they alone protected. */
  async leases(target: Target, batch: number, nowMs: number): Promise<void> {
    // Most runs find none: one indexed probe instead of an empty transaction.
    const { rows: expired } = await this.pool.query(
      `SELECT 1 FROM uploadedblob WHERE repository_id = $1 AND expires_at <= to_timestamp($2::float8 / 1000) LIMIT 1`, [target.id, nowMs]);
    for (let deleted = expired.length > 0 ? batch : 0; deleted === batch && !this.stopped;) {
      const outcome = await this.commit(async (tx, counts) => {
        const { rows } = await tx.query<{ blob_id: number }>(
          `DELETE FROM uploadedblob WHERE id IN (
             SELECT id FROM uploadedblob WHERE repository_id = $1 AND expires_at <= to_timestamp($2::float8 / 1000)
              ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
           RETURNING blob_id`, [target.id, nowMs, batch]);
        counts.rowsDeleted('UploadedBlob', rows.length);
        const blobs = await collectOrphanBlobs(tx, rows.map((r) => r.blob_id), { nowMs, counts });
        return { deleted: rows.length, blobs };
      });
      this.pendingIds.push(...outcome.blobs.pendingIds);
      outcome.blobs.busyIds.forEach((id) => this.busyBlobIds.add(id));
      deleted = outcome.deleted;
    }
  }

  /** Retries blob candidates other transactions held, after pauses long enough for those to commit. */
  async retryBusyBlobs(nowMs: number): Promise<void> {
    const retried = await retryBusyBlobs(this.pool, [...this.busyBlobIds], { nowMs, listener: this.counts, signal: this.signal });
    this.pendingIds.push(...retried.pendingIds);
    this.busyBlobIds.clear();
    retried.busyIds.forEach((id) => this.busyBlobIds.add(id));
  }
}

/** Pauses before each retry of busy blob candidates: most holders commit within milliseconds. */
const BUSY_RETRY_PAUSES_MS = [50, 250, 1000];

/**
 * Collects `blobIds` again after short pauses while some stay busy; returns what it recorded and
 * the candidates still busy after the last pause.
 */
export async function retryBusyBlobs(pool: Pool, blobIds: readonly number[], options: CollectOptions = {}): Promise<{ pendingIds: number[]; busyIds: number[] }> {
  const pendingIds: number[] = [];
  let busyIds = [...blobIds];
  for (const pauseMs of BUSY_RETRY_PAUSES_MS) {
    if (busyIds.length === 0 || options.signal?.aborted) break;
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    const outcome = await collectBlobs(pool, busyIds, options);
    pendingIds.push(...outcome.pendingIds);
    busyIds = outcome.busyIds;
  }
  return { pendingIds, busyIds };
}

/** Ids of the repository's garbage manifests right now, in id order (the plan's rule), read through `db`. */
export async function garbageManifestIdsIn(db: Queryable, repositoryId: number, nowMs: number): Promise<number[]> {
  const params: PlanParams = [null, repositoryId, nowMs, false];
  const { rows } = await db.query<{ id: number }>(`${PLAN_CTES} SELECT id FROM garbage_manifests ORDER BY id`, params);
  return rows.map((r) => r.id);
}

/**
 * Collects blobs found orphaned outside any repository's run (the sweep's blob scan), a batch per
 * transaction; returns the pending deletions recorded.
 */
export async function collectBlobs(pool: Pool, blobIds: readonly number[], options: CollectOptions = {}): Promise<{ blobs: number; pendingIds: number[]; busyIds: number[] }> {
  const nowMs = options.nowMs ?? Date.now();
  const batch = Math.min(options.batchSize ?? MAX_BATCH, MAX_BATCH);
  const total = new GcTally(options.listener);
  const pendingIds: number[] = [];
  const busyIds: number[] = [];
  for (let i = 0; i < blobIds.length && !options.signal?.aborted; i += batch) {
    let counts = new GcTally();
    const outcome = await withTransaction(pool, (tx) => {
      counts = new GcTally();
      return collectOrphanBlobs(tx, blobIds.slice(i, i + batch), { nowMs, counts });
    });
    counts.replayInto(total);
    pendingIds.push(...outcome.pendingIds);
    busyIds.push(...outcome.busyIds);
  }
  return { blobs: total.count('ImageStorage'), pendingIds, busyIds };
}

/**
 * Deletes tags `ids` inside `tx`; returns how many went. Quay's `linked_tag` rarely points at
 * anything, so links are cleared only when the delete trips over one (under a savepoint), which
 * spares a scan of the tag table per batch.
 */
export async function deleteTags(tx: Queryable, ids: number[]): Promise<number> {
  await tx.query('SAVEPOINT gc_tags');
  try {
    const result = await tx.query(`DELETE FROM tag WHERE id = ANY($1::bigint[])`, [ids]);
    return result.rowCount ?? 0;
  } catch (error) {
    if ((error as { code?: string }).code !== '23503') throw error;
    await tx.query('ROLLBACK TO SAVEPOINT gc_tags');
    await tx.query(`UPDATE tag SET linked_tag_id = NULL WHERE linked_tag_id = ANY($1::bigint[])`, [ids]);
    return (await tx.query(`DELETE FROM tag WHERE id = ANY($1::bigint[])`, [ids])).rowCount ?? 0;
  }
}
