/**
 * Repository purge (the `repositorygc` job, and each repository of a namespace purge): deletes
 * everything a repository marked for deletion owns, in bounded batches, then its marker and its
 * row. Every step makes progress by deleting rows, so a run interrupted anywhere (even SIGKILL)
 * resumes where it stopped; a missing marker means done. Blobs go through the same orphan rule as
 * GC, so a blob another repository still uses is never deleted.
 */
import { mapBounded } from '../../storage/concurrency.ts';
import { uploadKey } from '../../storage/keys.ts';
import { withTransaction, type Pool, type Queryable } from '../pool.ts';
import { collectOrphanBlobs } from './blobs.ts';
import { deleteTags, retryBusyBlobs } from './collect.ts';
import { MAX_BATCH, STORAGE_CONCURRENCY } from './constants.ts';
import { deleteUnusedManifests } from './manifests.ts';
import type { BlobStores } from './pending-deletions.ts';
import { GcTally, type GcListener, type GcTable } from './tally.ts';

/** Options of one purge run. */
export interface PurgeOptions {
  /** Where upload sessions' bytes live (their storage is discarded directly, before their rows). */
  readonly stores: BlobStores;
  /** Metadata-only pruning (GC-17): upload sessions' rows go, their storage stays. */
  readonly keepUploadStorage?: boolean;
  readonly nowMs?: number;
  readonly listener?: GcListener;
  readonly batchSize?: number;
  /** Wall-clock instant (ms) after which the run stops between batches and reports not done. */
  readonly deadlineMs?: number;
  readonly signal?: AbortSignal;
}

/** What one purge run did. */
export interface PurgeResult {
  /** True when the target is gone (purged now, or already: no marker). */
  readonly done: boolean;
  /** Pending storage deletions recorded by this run: drain them next. */
  readonly pendingIds: number[];
}

/** Purges repository `repositoryId` if its `deletedrepository` marker exists. Callers hold its GC lock. */
export async function purgeMarkedRepository(pool: Pool, repositoryId: number, options: PurgeOptions): Promise<PurgeResult> {
  const { rows } = await pool.query(`SELECT 1 FROM deletedrepository WHERE repository_id = $1`, [repositoryId]);
  if (rows.length === 0) return { done: true, pendingIds: [] };
  // Quay sets the state here too: a marker written by an older mark path may not have.
  await pool.query(`UPDATE repository SET state = 3 WHERE id = $1 AND state <> 3`, [repositoryId]);
  return purgeRepository(pool, repositoryId, options);
}

/** Deletes everything of repository `repositoryId` (state MARKED_FOR_DELETION), then the row. */
export async function purgeRepository(pool: Pool, repositoryId: number, options: PurgeOptions): Promise<PurgeResult> {
  const purge = new Purge(pool, repositoryId, options);
  const { rows } = await pool.query<{ namespace_id: number }>(
    `SELECT namespace_user_id AS namespace_id FROM repository WHERE id = $1 AND state = 3`, [repositoryId]);
  if (!rows[0]) return { done: true, pendingIds: [] };
  const namespaceId = rows[0].namespace_id;
  const steps: (() => Promise<boolean>)[] = [
    // Child links first: otherwise a child with a lower id than its parent blocks its batch (§6.3 #27).
    () => purge.rows('ManifestChild', `SELECT id FROM manifestchild WHERE repository_id = $1`, 'manifestchild'),
    () => purge.tags(),
    () => purge.manifests(namespaceId),
    () => purge.leases(),
    () => purge.uploads(),
    () => purge.rows('RepositoryPermission', `SELECT id FROM repositorypermission WHERE repository_id = $1`, 'repositorypermission'),
    () => purge.rows('RepositoryNotification', `SELECT id FROM repositorynotification WHERE repository_id = $1`, 'repositorynotification'),
    () => purge.rows('RepoMirrorConfig', `SELECT id FROM repomirrorconfig WHERE repository_id = $1`, 'repomirrorconfig'),
    () => purge.rows('RepoMirrorRule', `SELECT id FROM repomirrorrule WHERE repository_id = $1`, 'repomirrorrule'),
    () => purge.rows('QuotaRepositorySize', `SELECT id FROM quotarepositorysize WHERE repository_id = $1`, 'quotarepositorysize'),
    () => purge.retryBusyBlobs(),
    () => purge.finish(),
  ];
  for (const step of steps) {
    if (!(await step())) return { done: false, pendingIds: purge.pendingIds };
  }
  return { done: true, pendingIds: purge.pendingIds };
}

/** One purge run's state; each step returns false when it stopped before finishing. */
class Purge {
  readonly pendingIds: number[] = [];
  private readonly busyBlobIds = new Set<number>();
  private readonly counts: GcTally;
  private readonly batch: number;
  private readonly nowMs: number;

  constructor(private readonly pool: Pool, private readonly repositoryId: number, private readonly options: PurgeOptions) {
    this.counts = new GcTally(options.listener);
    this.batch = Math.min(options.batchSize ?? MAX_BATCH, MAX_BATCH);
    this.nowMs = options.nowMs ?? Date.now();
  }

  private get outOfTime(): boolean {
    return (this.options.signal?.aborted ?? false) || (this.options.deadlineMs !== undefined && Date.now() >= this.options.deadlineMs);
  }

  private async commit<T>(fn: (tx: Queryable, counts: GcTally) => Promise<T>): Promise<T> {
    let counts = new GcTally();
    const value = await withTransaction(this.pool, (tx) => {
      counts = new GcTally();
      return fn(tx, counts);
    });
    counts.replayInto(this.counts);
    return value;
  }

  /** Repeats `batch` (which returns how many rows it handled) until it handles none. */
  private async loop(batch: () => Promise<number>): Promise<boolean> {
    for (;;) {
      if (this.outOfTime) return false;
      if ((await batch()) === 0) return true;
    }
  }

  /** Deletes `table`'s rows selected by `select` ($1 = repository id), a batch at a time. */
  rows(name: GcTable, select: string, table: string): Promise<boolean> {
    return this.loop(() => this.commit(async (tx, counts) => {
      const result = await tx.query(`DELETE FROM ${table} WHERE id IN (${select} ORDER BY id LIMIT $2)`, [this.repositoryId, this.batch]);
      counts.rowsDeleted(name, result.rowCount ?? 0);
      return result.rowCount ?? 0;
    }));
  }

  tags(): Promise<boolean> {
    return this.loop(() => this.commit(async (tx, counts) => {
      const { rows } = await tx.query<{ id: number }>(
        `SELECT id FROM tag WHERE repository_id = $1 ORDER BY id LIMIT $2 FOR UPDATE`, [this.repositoryId, this.batch]);
      const ids = rows.map((r) => r.id);
      if (ids.length === 0) return 0;
      counts.rowsDeleted('Tag', await deleteTags(tx, ids));
      return ids.length;
    }));
  }

  /** Every manifest, tagged or not (Quay's PROJQUAY-8136 leak), referrers included. */
  manifests(namespaceId: number): Promise<boolean> {
    return this.loopWithProgress(async () => {
      const { rows } = await this.pool.query<{ id: number }>(
        `SELECT id FROM manifest WHERE repository_id = $1 ORDER BY id LIMIT $2`, [this.repositoryId, this.batch]);
      if (rows.length === 0) return { handled: 0, progressed: true };
      const outcome = await this.commit(async (tx, counts) => {
        const manifests = await deleteUnusedManifests(tx, { id: this.repositoryId, namespaceId }, rows.map((r) => r.id), { counts, ignoreReferrers: true });
        const blobs = await collectOrphanBlobs(tx, manifests.blobIds, { nowMs: this.nowMs, counts });
        return { deleted: manifests.deleted.length, pendingIds: blobs.pendingIds, busyIds: blobs.busyIds };
      });
      this.pendingIds.push(...outcome.pendingIds);
      outcome.busyIds.forEach((id) => this.busyBlobIds.add(id));
      return { handled: rows.length, progressed: outcome.deleted > 0 };
    });
  }

  /** Every upload lease of the repository, expired or not, and the blobs only they protected. */
  leases(): Promise<boolean> {
    return this.loop(async () => {
      const outcome = await this.commit(async (tx, counts) => {
        const { rows } = await tx.query<{ blob_id: number }>(
          `DELETE FROM uploadedblob WHERE id IN (SELECT id FROM uploadedblob WHERE repository_id = $1 ORDER BY id LIMIT $2 FOR UPDATE)
           RETURNING blob_id`, [this.repositoryId, this.batch]);
        counts.rowsDeleted('UploadedBlob', rows.length);
        const blobs = await collectOrphanBlobs(tx, rows.map((r) => r.blob_id), { nowMs: this.nowMs, counts });
        return { handled: rows.length, pendingIds: blobs.pendingIds, busyIds: blobs.busyIds };
      });
      this.pendingIds.push(...outcome.pendingIds);
      outcome.busyIds.forEach((id) => this.busyBlobIds.add(id));
      return outcome.handled;
    });
  }

  /**
   * Upload sessions: their storage (multipart write, staged tail, any object at `uploads/<uuid>`)
   * is discarded first, then the rows; a storage error keeps the rows, so the next run retries.
   */
  uploads(): Promise<boolean> {
    return this.loop(async () => {
      const { rows } = await this.pool.query<UploadSession>(
        `SELECT b.id, b.uuid::text AS uuid, l.name AS location, b.storage_metadata FROM blobupload b
           JOIN imagestoragelocation l ON l.id = b.location_id WHERE b.repository_id = $1 ORDER BY b.id LIMIT $2`,
        [this.repositoryId, this.batch]);
      if (rows.length === 0) return 0;
      if (!this.options.keepUploadStorage) await mapBounded(rows, STORAGE_CONCURRENCY, (row) => discardUploadStorage(this.options.stores, row));
      await this.commit(async (tx, counts) => {
        const result = await tx.query(`DELETE FROM blobupload WHERE id = ANY($1::bigint[])`, [rows.map((r) => r.id)]);
        counts.rowsDeleted('BlobUpload', result.rowCount ?? 0);
      });
      return rows.length;
    });
  }

  /**
   * Blobs other transactions held while this purge unlinked them: retried after pauses. Ones still
   * held are a push's (its lease will protect them) or left for the sweep; the purge goes on.
   */
  async retryBusyBlobs(): Promise<boolean> {
    const retried = await retryBusyBlobs(this.pool, [...this.busyBlobIds], { nowMs: this.nowMs, listener: this.counts, signal: this.options.signal });
    this.pendingIds.push(...retried.pendingIds);
    return !this.outOfTime;
  }

  /** The marker and the repository row, together; the FK checks prove nothing was left behind. */
  async finish(): Promise<boolean> {
    if (this.outOfTime) return false;
    try {
      await this.commit(async (tx, counts) => {
        const marker = await tx.query(`DELETE FROM deletedrepository WHERE repository_id = $1`, [this.repositoryId]);
        counts.rowsDeleted('DeletedRepository', marker.rowCount ?? 0);
        const repository = await tx.query(`DELETE FROM repository WHERE id = $1`, [this.repositoryId]);
        counts.rowsDeleted('Repository', repository.rowCount ?? 0);
        if (repository.rowCount) counts.repositoryPurged();
      });
      return true;
    } catch (error) {
      // A row appeared since its step ran (a push that was in flight at mark time): run again.
      if ((error as { code?: string }).code === '23503') return false;
      throw error;
    }
  }

  /** Like `loop`, but a batch that handled rows without deleting any (all busy) stops the run. */
  private async loopWithProgress(batch: () => Promise<{ handled: number; progressed: boolean }>): Promise<boolean> {
    for (;;) {
      if (this.outOfTime) return false;
      const { handled, progressed } = await batch();
      if (handled === 0) return true;
      if (!progressed) return false;
    }
  }
}

interface UploadSession {
  id: number;
  uuid: string;
  location: string;
  storage_metadata: { uploadId?: string; tail?: { key: string } };
}

// Every call is idempotent (abort of an unknown upload and delete of a missing key are no-ops).
async function discardUploadStorage(stores: BlobStores, session: UploadSession): Promise<void> {
  const store = stores.store(session.location);
  const key = uploadKey(session.uuid);
  const meta = session.storage_metadata ?? {};
  if (meta.uploadId) await store.abortMultipartUpload({ key, uploadId: meta.uploadId, initiated: new Date(0) });
  if (meta.tail?.key) await store.delete(meta.tail.key);
  await store.delete(key);
}
