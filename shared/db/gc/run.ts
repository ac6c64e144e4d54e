/**
 * One GC or purge job from start to end, as plain functions the workers (and tests, the CLI, the
 * benchmark) call: take the target's lock, do the row work, then delete the storage objects it
 * recorded. Each returns `{ locked: false }` when another job holds the target, so the worker can
 * defer without spending an attempt.
 */
import type { Pool } from '../pool.ts';
import { collectBlobs, collectRepository, type CollectOptions, type CollectResult } from './collect.ts';
import { withGcLock } from './locks.ts';
import { drainPendingDeletions, type BlobStores, type DrainResult } from './pending-deletions.ts';
import { purgeMarkedNamespace } from './purge-namespace.ts';
import { purgeMarkedRepository, type PurgeOptions, type PurgeResult } from './purge-repository.ts';
import { idWindow, maxId, orphanBlobIds, repositoriesWithExpiredGarbage, repositoriesWithOrphanManifests } from './sweep.ts';
import { resolveUploadIntents, type IntentResult } from './upload-intents.ts';

/**
 * GC-17's pruning mode: with `pruneBlobs` false (managementState Removed or Unmanaged) a run
 * deletes rows only. The storage objects stay, and so do their pending-deletion records, so a
 * return to Managed deletes them later through the usual per-digest re-check.
 */
export interface PruneOptions {
  /** Delete storage objects too (default true). */
  readonly pruneBlobs?: boolean;
}

const NO_DRAIN: DrainResult = { deleted: 0, bytes: 0, kept: 0, failed: 0, busy: 0 };

/** A locked run's outcome, or `{ locked: false }` when the target was busy. */
export type Locked<T> = { locked: true; value: T } | { locked: false };

/** Collects repository `repositoryId` under its lock, then deletes the objects it orphaned. */
export async function runRepositoryGc(
  pool: Pool, stores: BlobStores, repositoryId: number, options: CollectOptions & PruneOptions = {},
): Promise<Locked<{ collect: CollectResult; drain: DrainResult }>> {
  return withGcLock(pool, { repositoryId }, async () => {
    const collect = await collectRepository(pool, repositoryId, options);
    return { collect, drain: options.pruneBlobs === false ? NO_DRAIN : await drainOwn(pool, stores, collect.pendingIds, options) };
  });
}

/** Purges repository `repositoryId` (if marked) under its lock, then deletes the objects recorded. */
export async function runRepositoryPurge(
  pool: Pool, stores: BlobStores, repositoryId: number, options: Omit<PurgeOptions, 'stores'> & PruneOptions = {},
): Promise<Locked<{ purge: PurgeResult; drain: DrainResult }>> {
  return withGcLock(pool, { repositoryId }, async () => {
    const purge = await purgeMarkedRepository(pool, repositoryId, { ...options, stores, keepUploadStorage: options.pruneBlobs === false });
    return { purge, drain: options.pruneBlobs === false ? NO_DRAIN : await drainOwn(pool, stores, purge.pendingIds, options) };
  });
}

/** Purges namespace `namespaceId` (if marked) under its lock, then deletes the objects recorded. */
export async function runNamespacePurge(
  pool: Pool, stores: BlobStores, namespaceId: number, options: Omit<PurgeOptions, 'stores'> & PruneOptions = {},
): Promise<Locked<{ purge: PurgeResult; drain: DrainResult }>> {
  return withGcLock(pool, { namespaceId }, async () => {
    const purge = await purgeMarkedNamespace(pool, namespaceId, { ...options, stores, keepUploadStorage: options.pruneBlobs === false });
    return { purge, drain: options.pruneBlobs === false ? NO_DRAIN : await drainOwn(pool, stores, purge.pendingIds, options) };
  });
}

/** Bounds of one sweep tick. */
export interface SweepOptions extends PruneOptions {
  readonly nowMs?: number;
  /** Tick number (e.g. floor(now / frequency)); picks the id windows of the table scans. */
  readonly tick: number;
  /** Most repositories returned per tick. */
  readonly maxRepositories?: number;
  /** Ids of manifest and imagestorage looked at per tick. */
  readonly scanWindow?: number;
  /** Most old pending deletions retried per tick. */
  readonly maxPendingRetries?: number;
  readonly listener?: CollectOptions['listener'];
  readonly signal?: AbortSignal;
}

/** What one sweep tick found and did. */
export interface SweepResult {
  /** Repositories to enqueue a `garbagecollection` job for. */
  readonly repositoryIds: number[];
  /** Orphaned blobs collected directly. */
  readonly blobs: number;
  readonly drain: DrainResult;
  /** Upload commit intents of pushes that died between moving their bytes and committing. */
  readonly intents: IntentResult;
}

/**
 * One sweep tick: lists repositories with garbage (expired tags or leases, orphan manifests in this
 * tick's id window) for the caller to enqueue, collects orphaned blobs of this tick's window, and
 * retries pending storage deletions older than a minute (failed ones, or a crashed job's), and
 * resolves the upload commit intents whose push died (their lease has passed).
 */
export async function runSweep(pool: Pool, stores: BlobStores, options: SweepOptions): Promise<SweepResult> {
  const nowMs = options.nowMs ?? Date.now();
  const window = options.scanWindow ?? 50_000;
  const limit = options.maxRepositories ?? 1000;
  const expired = await repositoriesWithExpiredGarbage(pool, nowMs, limit);
  const orphans = await repositoriesWithOrphanManifests(pool, idWindow(await maxId(pool, 'manifest'), window, options.tick));
  const repositoryIds = [...new Set([...expired, ...orphans])].sort((a, b) => a - b).slice(0, limit);
  const blobIds = await orphanBlobIds(pool, idWindow(await maxId(pool, 'imagestorage'), window, options.tick), nowMs);
  const blobs = await collectBlobs(pool, blobIds, { nowMs, listener: options.listener, signal: options.signal });
  // Metadata only: no storage delete, no retry of pending ones, no cleanup of dead pushes' objects.
  if (options.pruneBlobs === false) return { repositoryIds, blobs: blobs.blobs, drain: NO_DRAIN, intents: { kept: 0, deleted: 0, bytes: 0, busy: 0, failed: 0 } };
  const drain = await drainPendingDeletions(pool, stores, {
    minAgeMs: 60_000, limit: options.maxPendingRetries ?? 10_000, listener: options.listener, signal: options.signal,
  });
  // The blobs this tick orphaned are fresh records: delete their objects now rather than next minute.
  const own = await drainOwn(pool, stores, blobs.pendingIds, options);
  const intents = await resolveUploadIntents(pool, stores, { listener: options.listener, signal: options.signal });
  return { repositoryIds, blobs: blobs.blobs, drain: addDrains(drain, own), intents };
}

/**
 * Deletes the objects a run recorded; records whose digest a push held are tried once more after a
 * pause (the sweep retries whatever is still left a minute later).
 */
async function drainOwn(pool: Pool, stores: BlobStores, ids: number[], options: { listener?: CollectOptions['listener']; signal?: AbortSignal }): Promise<DrainResult> {
  const first = await drainPendingDeletions(pool, stores, { ids, listener: options.listener, signal: options.signal });
  if (first.busy === 0 || options.signal?.aborted) return first;
  await new Promise((resolve) => setTimeout(resolve, 250));
  const second = await drainPendingDeletions(pool, stores, { ids, listener: options.listener, signal: options.signal });
  return { ...addDrains(first, second), busy: second.busy };
}

function addDrains(a: DrainResult, b: DrainResult): DrainResult {
  return { deleted: a.deleted + b.deleted, bytes: a.bytes + b.bytes, kept: a.kept + b.kept, failed: a.failed + b.failed, busy: a.busy + b.busy };
}
