/**
 * GC metrics: Quay's `quay_gc_*` names, types, labels and HELP texts (reference §2.8, seed MET-G*),
 * plus what Quay cannot tell its operators: bytes reclaimed, storage deletions still pending, and
 * bytes GC could reclaim (time machine included). Shared by the three GC workers, which cannot
 * import each other.
 */
import { client, metric } from '../../metrics/index.ts';
import type { Pool } from '../pool.ts';
import { dryRun } from './dry-run.ts';
import { pendingDeletionStats } from './pending-deletions.ts';
import type { GcListener, GcTable } from './tally.ts';

const counter = (name: string, help: string, labelNames: string[] = []) =>
  metric(name, () => new client.Counter({ name, help, labelNames }));

/** Repositories the GC worker finished collecting (Quay: one per tick). */
export const gcIterations = counter('quay_gc_iterations_total', 'number of iterations by the GCWorker');
const reposPurged = counter('quay_gc_repos_purged_total', 'number of repositories purged by the RepositoryGCWorker or NamespaceGCWorker');
const namespacesPurged = counter('quay_gc_namespaces_purged_total', 'number of namespaces purged by the NamespaceGCWorker');
const blobsDeleted = counter('quay_gc_storage_blobs_deleted_total', 'number of storage blobs deleted');
const rowsDeleted = counter('quay_gc_table_rows_deleted_total', 'number of table rows deleted by GC', ['table']);
const bytesReclaimed = counter('quay_gc_storage_bytes_reclaimed_total', 'number of bytes freed in storage by GC (each location counted)');

/** Forwards committed deletions to the counters above. */
export const gcMetricsListener: GcListener = {
  rowsDeleted: (table: GcTable, count: number) => rowsDeleted.labels({ table }).inc(count),
  objectsDeleted: (count: number, bytes: number) => {
    if (count > 0) blobsDeleted.inc(count);
    if (bytes > 0) bytesReclaimed.inc(bytes);
  },
  repositoryPurged: () => reposPurged.inc(),
  namespacePurged: () => namespacesPurged.inc(),
};

/** How old the reclaimable-bytes figure may get before a scrape recomputes it (it is a full plan). */
const RECLAIMABLE_MAX_AGE_MS = 5 * 60_000;

let source: Pool | undefined;
let reclaimable: { value: number; atMs: number; running?: Promise<void> } = { value: 0, atMs: 0 };

async function refreshReclaimable(pool: Pool): Promise<void> {
  const [plan, pending] = await Promise.all([dryRun(pool, {}, { ignoreTimeMachine: true }), pendingDeletionStats(pool)]);
  reclaimable = { value: plan.totals.bytes + pending.bytes, atMs: Date.now() };
}

metric('quayfleet_gc_pending_storage_deletions', () => new client.Gauge({
  name: 'quayfleet_gc_pending_storage_deletions',
  help: 'storage objects whose rows GC deleted and whose storage delete has not succeeded yet',
  async collect() {
    if (source) this.set((await pendingDeletionStats(source)).count);
  },
}));

metric('quayfleet_gc_reclaimable_bytes', () => new client.Gauge({
  name: 'quayfleet_gc_reclaimable_bytes',
  help: 'bytes GC would free if every ended tag left the time machine now, plus pending storage deletions (refreshed at most every 5 minutes)',
  async collect() {
    const pool = source;
    if (pool && Date.now() - reclaimable.atMs > RECLAIMABLE_MAX_AGE_MS) {
      // One refresh at a time; a scrape never waits more than for the one in flight.
      reclaimable.running ??= refreshReclaimable(pool).catch(() => { reclaimable.running = undefined; });
      await reclaimable.running;
    }
    this.set(reclaimable.value);
  },
}));

const pruningMode = metric('quayfleet_gc_pruning_mode', () => new client.Gauge({
  name: 'quayfleet_gc_pruning_mode',
  help: 'GC pruning mode (GC-17): 1 for the mode in force; metadata_and_blobs under managementState Managed, metadata_only under Removed or Unmanaged (rows deleted, storage objects kept)',
  labelNames: ['mode'] as const,
}));

/** The two modes, as the `mode` label and the dry run name them. */
export type PruningMode = 'metadata_and_blobs' | 'metadata_only';

/** The pruning mode of `pruneBlobs`, exported on quayfleet_gc_pruning_mode (GC workers call it on every job). */
export function setPruningMode(pruneBlobs: boolean): PruningMode {
  const mode: PruningMode = pruneBlobs ? 'metadata_and_blobs' : 'metadata_only';
  pruningMode.labels({ mode }).set(1);
  pruningMode.labels({ mode: pruneBlobs ? 'metadata_only' : 'metadata_and_blobs' }).set(0);
  return mode;
}

/** Makes the two gauges read from `pool` (idempotent; the GC workers call it on every job). */
export function bindGcGauges(pool: Pool): void {
  source = pool;
}
