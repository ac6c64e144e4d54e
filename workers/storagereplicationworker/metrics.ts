/**
 * Replication metrics (Quay exports none for its replication worker): copies by destination,
 * method and outcome, bytes copied, copy duration, and the backlog per location (blobs a location
 * must hold and does not), read from Postgres at scrape, at most once a minute.
 */
import { client, metric } from '../../shared/metrics/index.ts';
import type { Pool } from '../../shared/db/pool.ts';
import { replicationBacklog } from '../../shared/db/replication.ts';
import type { CopyMethod } from './copy.ts';

/** How one destination of one job ended. */
export type CopyOutcome = 'copied' | 'already_present' | 'failed' | 'corrupt' | 'collected';

const copies = metric('quayfleet_replication_copies_total', () => new client.Counter({
  name: 'quayfleet_replication_copies_total',
  help: 'blob copies to a location by outcome (copied, already_present, failed, corrupt, collected) and method (server_side, stream, none)',
  labelNames: ['location', 'outcome', 'method'] as const,
}));
const bytes = metric('quayfleet_replication_bytes_total', () => new client.Counter({
  name: 'quayfleet_replication_bytes_total',
  help: 'bytes of blobs copied to a location and recorded there (server-side copies included)',
  labelNames: ['location'] as const,
}));
const seconds = metric('quayfleet_replication_copy_duration_seconds', () => new client.Histogram({
  name: 'quayfleet_replication_copy_duration_seconds',
  help: 'time to copy one blob to one location and verify it there',
  labelNames: ['location', 'method'] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
}));

/** Counts one destination's outcome; `size` is added to the bytes when the blob was copied. */
export function countCopy(location: string, outcome: CopyOutcome, method: CopyMethod | 'none', size = 0, durationS?: number): void {
  copies.labels({ location, outcome, method }).inc();
  if (outcome === 'copied') bytes.labels({ location }).inc(size);
  if (durationS !== undefined && method !== 'none') seconds.labels({ location, method }).observe(durationS);
}

const BACKLOG_MAX_AGE_MS = 60_000;
let backlogSource: { pool: Pool; defaultLocations: readonly string[] } | undefined;
let backlog: { byLocation: Map<string, number>; atMs: number; running?: Promise<void> } = { byLocation: new Map(), atMs: 0 };

metric('quayfleet_replication_backlog_blobs', () => new client.Gauge({
  name: 'quayfleet_replication_backlog_blobs',
  help: 'blobs a location must hold (default locations, namespace regions) and does not hold yet (refreshed at most every minute)',
  labelNames: ['location'] as const,
  async collect() {
    const source = backlogSource;
    if (source && Date.now() - backlog.atMs > BACKLOG_MAX_AGE_MS) {
      backlog.running ??= replicationBacklog(source.pool, source.defaultLocations)
        .then((byLocation) => { backlog = { byLocation, atMs: Date.now() }; })
        .catch(() => { backlog.running = undefined; });
      await backlog.running;
    }
    this.reset();
    for (const [location, count] of backlog.byLocation) this.labels({ location }).set(count);
  },
}));

/** Makes the backlog gauge read from `pool` (idempotent; every job calls it). */
export function bindBacklogGauge(pool: Pool, defaultLocations: readonly string[]): void {
  backlogSource = { pool, defaultLocations };
}
