/**
 * Upload-cleanup metrics. Quay's `quay_multipart_uploads_{started,completed,aborted}_total` are
 * counted by the storage layer on every multipart write (so started = completed + aborted + in
 * flight, summed over the fleet); these add what was cleaned and what is waiting to be.
 */
import { client, metric } from '../../shared/metrics/index.ts';
import type { Pool } from '../../shared/db/pool.ts';
import { abandonedSessionStats } from './sessions.ts';

/**
 * What a cleanup removed, by kind: `session` (abandoned sessions), `multipart`, `folder`, `segment`
 * (chunk_cleanup), `temporary` (temp files of crashed writes, LocalStorage), `uncommitted` (blobs
 * whose staged blocks were discarded, Azure).
 */
export type CleanedKind = 'session' | 'multipart' | 'folder' | 'segment' | 'temporary' | 'uncommitted';

const objectsCleaned = metric('quayfleet_upload_cleanup_objects_total', () => new client.Counter({
  name: 'quayfleet_upload_cleanup_objects_total',
  help: 'stored upload objects deleted and multipart uploads aborted by upload cleanup',
  labelNames: ['kind'],
}));
const bytesCleaned = metric('quayfleet_upload_cleanup_bytes_total', () => new client.Counter({
  name: 'quayfleet_upload_cleanup_bytes_total',
  help: 'bytes of abandoned uploads removed by upload cleanup',
  labelNames: ['kind'],
}));
const sessionsCancelled = metric('quayfleet_upload_sessions_cancelled_total', () => new client.Counter({
  name: 'quayfleet_upload_sessions_cancelled_total',
  help: 'abandoned upload sessions cancelled by upload cleanup',
}));

/** Counts what one cleanup step removed. */
export function recordCleaned(kind: CleanedKind, objects: number, bytes: number, sessions = 0): void {
  if (objects > 0) objectsCleaned.labels({ kind }).inc(objects);
  if (bytes > 0) bytesCleaned.labels({ kind }).inc(bytes);
  if (sessions > 0) sessionsCancelled.inc(sessions);
}

let source: { pool: Pool; thresholdMs: number } | undefined;

metric('quayfleet_abandoned_uploads', () => new client.Gauge({
  name: 'quayfleet_abandoned_uploads',
  help: 'upload sessions inactive for longer than BLOBUPLOAD_DELETION_DATE_THRESHOLD, waiting for the cleanup',
  async collect() {
    if (source) this.set((await abandonedSessionStats(source.pool, { nowMs: Date.now(), thresholdMs: source.thresholdMs })).count);
  },
}));

metric('quayfleet_abandoned_upload_bytes', () => new client.Gauge({
  name: 'quayfleet_abandoned_upload_bytes',
  help: 'bytes held by abandoned upload sessions',
  async collect() {
    if (source) this.set((await abandonedSessionStats(source.pool, { nowMs: Date.now(), thresholdMs: source.thresholdMs })).bytes);
  },
}));

/** Makes the abandoned-upload gauges read from `pool` (the worker calls it on every job). */
export function bindUploadGauges(pool: Pool, thresholdMs: number): void {
  source = { pool, thresholdMs };
}
