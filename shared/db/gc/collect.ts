/**
 * Per-repository collection (the `garbagecollection` job), Quay's `garbage_collect_repo` made
 * set-based: garbage tags, then garbage manifests with their dependent rows, then expired upload
 * leases; every transaction that unlinks blobs also collects the blobs it orphaned, so a crash
 * between steps never strands an unreferenced blob row. Storage objects are only recorded here
 * (`pendingstoragedeletion`); `drainPendingDeletions` deletes them afterwards.
 */
import { withTransaction, type Pool, type Queryable } from '../pool.ts';
import { collectOrphanBlobs, type BlobCollection } from './blobs.ts';
import { MAX_BATCH } from './constants.ts';
import { deleteUnusedManifests, type ManifestDeletion, type RepositoryRef } from './manifests.ts';
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
  /** Whether the repository had an expired upload lease when the run started. */
  expiredLeases: boolean;
}

/**
 * GC's statements are short and run on small id sets; JIT compiling the plan's recursive query
 * cost more than running it.
 */
const NO_JIT = 'SET LOCAL jit = off';

/** A manifest chunk's outcome: the manifests handled and the blobs they orphaned. */
interface ManifestChunk {
  readonly manifests: ManifestDeletion;
  readonly blobs: BlobCollection;
}

/** Deletes the unused manifests among `chunk` and collects the blobs they orphaned, inside `tx`. */
async function collectManifestChunk(tx: Queryable, target: Target, chunk: number[], nowMs: number, counts: GcTally): Promise<ManifestChunk> {
  const manifests = await deleteUnusedManifests(tx, target, chunk, { counts });
  const blobs = await collectOrphanBlobs(tx, manifests.blobIds, { nowMs, counts });
  return { manifests, blobs };
}

/**
 * Deletes up to `batch` of the repository's tags past the cutoff, rows locked (others' locks
 * skipped) and the cutoff re-checked, in one statement; returns how many went. Quay's
 * `linked_tag` rarely points at anything: the links of surviving tags to deleted ones are cleared
 * in the same statement (a partial index finds them), so the FK checked at its end holds.
 */
async function deleteGarbageTags(tx: Queryable, target: Target, batch: number): Promise<number> {
  const { rows } = await tx.query<{ deleted: number }>(
    `WITH doomed AS MATERIALIZED (
       SELECT id FROM tag WHERE repository_id = $1 AND lifetime_end_ms <= $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED),
     unlinked AS (
       UPDATE tag SET linked_tag_id = NULL
        WHERE linked_tag_id = ANY(ARRAY(SELECT id FROM doomed)) AND NOT (id = ANY(ARRAY(SELECT id FROM doomed))) RETURNING 1),
     deleted AS (DELETE FROM tag WHERE id = ANY(ARRAY(SELECT id FROM doomed)) RETURNING 1)
     SELECT (SELECT count(*) FROM deleted)::int AS deleted`,
    [target.id, target.cutoffMs, batch]);
  return rows[0]!.deleted;
}

/** Collects the garbage of repository `repositoryId`. Callers hold its GC lock (`withGcLock`). */
export async function collectRepository(pool: Pool, repositoryId: number, options: CollectOptions = {}): Promise<CollectResult> {
  const nowMs = options.nowMs ?? Date.now();
  const batch = Math.min(options.batchSize ?? MAX_BATCH, MAX_BATCH);
  const run = new Run(pool, options.listener, options.signal);
  const first = await run.tagsAndFirstManifests(repositoryId, batch, nowMs);
  if (!first) return { found: false, ...run.result() };
  await run.manifests(first.target, batch, nowMs, first.remaining);
  if (first.target.expiredLeases) await run.leases(first.target, batch, nowMs);
  await run.retryBusyBlobs(nowMs);
  return { found: true, ...run.result() };
}

/** The repository's state as one run starts: its garbage manifests by the plan, and what else is due. */
interface Survey {
  readonly target: Target;
  /** The plan's garbage manifests, in id order. */
  readonly garbage: number[];
  /** Whether a tag is past the time machine. */
  readonly expiredTags: boolean;
}

/**
 * The plan and the run's target in one statement; undefined when the repository is gone, marked
 * for deletion, or its namespace is being deleted (the plan's scope leaves those out).
 */
async function surveyRepository(db: Queryable, repositoryId: number, nowMs: number): Promise<Survey | undefined> {
  const params: PlanParams = [null, repositoryId, nowMs, false];
  const { rows } = await db.query<{ namespace_id: number; cutoff_ms: number; garbage: string[]; expired_tags: boolean; expired_leases: boolean }>(
    `${PLAN_CTES}
     SELECT s.namespace_id, s.cutoff_ms, ARRAY(SELECT id FROM garbage_manifests ORDER BY id) AS garbage,
            EXISTS (SELECT 1 FROM garbage_tags) AS expired_tags, EXISTS (SELECT 1 FROM garbage_leases) AS expired_leases
       FROM scope s`, params);
  const row = rows[0];
  return row && {
    target: { id: repositoryId, namespaceId: row.namespace_id, cutoffMs: row.cutoff_ms, expiredLeases: row.expired_leases },
    // bigint[] comes back as strings (only scalar int8 is parsed as a number).
    garbage: row.garbage.map(Number), expiredTags: row.expired_tags,
  };
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
    }, { settings: NO_JIT });
    counts.replayInto(this.counts);
    return value;
  }

  private get stopped(): boolean {
    return this.signal?.aborted ?? false;
  }

  /**
   * The run's first transactions: the survey (plan and target), then the tags past the time
   * machine, a batch per transaction, re-checking the cutoff under lock (the plan already counts
   * them as gone). The transaction that deletes the last tags also takes the first chunk of
   * garbage manifests and their blobs: a repository with less than a batch of garbage is collected
   * in one transaction. Returns the target and the garbage manifests not handled yet, or undefined
   * when there is nothing to collect from (see `surveyRepository`).
   */
  async tagsAndFirstManifests(repositoryId: number, batch: number, nowMs: number): Promise<{ target: Target; remaining: number[] } | undefined> {
    let survey: Survey | undefined;
    for (;;) {
      const outcome = await this.commit(async (tx, counts) => {
        const found = survey ?? await surveyRepository(tx, repositoryId, nowMs);
        if (!found) return undefined;
        const tags = found.expiredTags ? await deleteGarbageTags(tx, found.target, batch) : 0;
        counts.rowsDeleted('Tag', tags);
        const chunk = tags < batch && found.garbage.length > 0 ? found.garbage.slice(0, batch) : undefined;
        return { found, tags, chunk: chunk && { ids: chunk, ...(await collectManifestChunk(tx, found.target, chunk, nowMs, counts)) } };
      });
      if (!outcome) return undefined;
      survey = outcome.found;
      const { garbage, target } = survey;
      if (outcome.chunk) {
        this.took(outcome.chunk);
        const handled = new Set(outcome.chunk.ids);
        const deleted = new Set(outcome.chunk.manifests.deleted);
        // What the chunk did not delete (busy, or still used) waits for the next pass, as in `manifests`.
        return { target, remaining: [...outcome.chunk.ids.filter((id) => !deleted.has(id)), ...garbage.filter((id) => !handled.has(id))] };
      }
      if (outcome.tags < batch || this.stopped) return { target, remaining: garbage };
    }
  }

  /** Records what a committed manifest chunk left to do. */
  private took(outcome: ManifestChunk): void {
    this.pendingIds.push(...outcome.blobs.pendingIds);
    outcome.blobs.busyIds.forEach((id) => this.busyBlobIds.add(id));
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
        const outcome = await this.commit((tx, counts) => collectManifestChunk(tx, target, chunk, nowMs, counts));
        outcome.manifests.deleted.forEach((id) => deleted.add(id));
        this.took(outcome);
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
    for (let deleted = batch; deleted === batch && !this.stopped;) {
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
