/**
 * One upload cleanup from start to end, as plain functions the worker, the CLI (`quayfleet uploads
 * list|clean`) and the benchmark call: cancel abandoned sessions, then per location abort the
 * ownerless multipart writes (then discard the staged blocks nobody will commit, on Azure, and sweep
 * the temp files crashed writes left, on LocalStorage) and
 * sweep the ownerless objects of the uploads folder. A dry run reports the same figures and changes
 * nothing (temp files are not counted in a dry run).
 */
import type { Pool, Queryable } from '../../shared/db/pool.ts';
import {
  abandonedSessionStats, cancelAbandonedSessions, listAbandonedSessions, type AbandonedSession, type SessionCleanup, type UploadStores,
} from './sessions.ts';
import type { UploadCleanupSettings } from './settings.ts';
import { abortStaleMultipartUploads, discardUncommittedBlocks, sweepUploadsFolder, type SweepResult } from './storage-sweep.ts';

/** Which steps run, and how. */
export interface CleanupRun {
  readonly nowMs: number;
  readonly sessions: boolean;
  readonly multipart: boolean;
  readonly folder: boolean;
  /** Only this location's storage (sessions are cleaned wherever they are). */
  readonly location?: string;
  readonly dryRun?: boolean;
  /** Items listed per step in the report. */
  readonly keepItems?: number;
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
  /** Called after each committed step with what it removed (the worker's metrics). */
  readonly onCleaned?: (kind: 'session' | 'multipart' | 'folder' | 'temporary' | 'uncommitted', objects: number, bytes: number, sessions: number) => void;
}

/** What a run did (or would do). */
export interface CleanupReport {
  readonly dryRun: boolean;
  readonly sessions: SessionCleanup & { listed: AbandonedSession[] };
  readonly locations: { location: string; multipart?: SweepResult; uncommitted?: SweepResult; temporary?: { files: number; bytes: number }; folder?: SweepResult }[];
}

/** Runs the steps of `run` with the thresholds of `settings`. */
export async function runUploadCleanup(pool: Pool, stores: UploadStores, settings: UploadCleanupSettings, run: CleanupRun): Promise<CleanupReport> {
  const dryRun = run.dryRun ?? false;
  const sessions = run.sessions
    ? await sessionStep(pool, stores, settings, run)
    : { sessions: 0, objects: 0, bytes: 0, failed: 0, listed: [] };
  const locations: CleanupReport['locations'] = [];
  for (const location of run.location ? [run.location] : stores.locations) {
    if (run.signal?.aborted) break;
    const store = stores.store(location);
    const entry: CleanupReport['locations'][number] = { location };
    const common = { dryRun, keepItems: run.keepItems ?? 0, signal: run.signal };
    if (run.multipart) {
      entry.multipart = await abortStaleMultipartUploads(pool, store, { ...common, olderThan: new Date(run.nowMs - settings.multipartThresholdMs) });
      if (!dryRun) run.onCleaned?.('multipart', entry.multipart.aborted, 0, 0);
      // After the aborts above: the blocks of the writes just aborted have no marker any more.
      if (store.listUncommittedBlobs) {
        entry.uncommitted = await discardUncommittedBlocks(pool, store, { ...common, olderThan: new Date(run.nowMs - settings.multipartThresholdMs) });
        if (!dryRun) run.onCleaned?.('uncommitted', entry.uncommitted.objects, entry.uncommitted.bytes, 0);
      }
      // The same age rule as abandoned multipart writes: a live write keeps its temp file's mtime current.
      if (!dryRun && store.sweepTemporaryFiles) {
        entry.temporary = await store.sweepTemporaryFiles(new Date(run.nowMs - settings.multipartThresholdMs));
        run.onCleaned?.('temporary', entry.temporary.files, entry.temporary.bytes, 0);
      }
    }
    if (run.folder) {
      entry.folder = await sweepUploadsFolder(pool, store, { ...common, olderThan: new Date(run.nowMs - settings.sessionThresholdMs) });
      if (!dryRun) run.onCleaned?.('folder', entry.folder.objects, entry.folder.bytes, 0);
    }
    locations.push(entry);
  }
  return { dryRun, sessions, locations };
}

async function sessionStep(pool: Pool, stores: UploadStores, settings: UploadCleanupSettings, run: CleanupRun): Promise<CleanupReport['sessions']> {
  const window = { nowMs: run.nowMs, thresholdMs: settings.sessionThresholdMs };
  const listed = run.keepItems ? await listAbandonedSessions(pool, { ...window, limit: run.keepItems }) : [];
  if (run.dryRun) {
    const stats = await abandonedSessionStats(pool, window);
    return { sessions: stats.count, objects: 0, bytes: stats.bytes, failed: 0, listed };
  }
  const done = await cancelAbandonedSessions(pool, stores, {
    ...window, batchSize: run.batchSize, signal: run.signal,
    onBatch: (batch) => run.onCleaned?.('session', batch.objects, batch.bytes, batch.sessions),
  });
  return { ...done, listed };
}

/** Repositories holding an expired upload lease, lowest ids first (handed to GC after a cleanup). */
export async function repositoriesWithExpiredLeases(db: Queryable, nowMs: number, limit: number): Promise<number[]> {
  const { rows } = await db.query<{ id: number }>(
    `SELECT DISTINCT repository_id AS id FROM uploadedblob WHERE expires_at <= to_timestamp($1::float8 / 1000) ORDER BY 1 LIMIT $2`, [nowMs, limit]);
  return rows.map((r) => r.id);
}
