/**
 * Mirror metrics: Quay's `quay_repository_mirror_*` names, types and labels (reference §1.9),
 * plus what Quay lacks: syncs by outcome, tags and bytes copied, blobs skipped because the
 * registry already held them, the last success time per mirror, and the lag (upstream tags the
 * rule selects that are not here yet).
 */
import { client, metric } from '../../shared/metrics/index.ts';

const gauge = (name: string, help: string, labelNames: string[] = []) => metric(name, () => new client.Gauge({ name, help, labelNames }));
const counter = (name: string, help: string, labelNames: string[] = []) => metric(name, () => new client.Counter({ name, help, labelNames }));

export const rowsUnmirrored = gauge('quay_repository_rows_unmirrored', 'number of repositories in the database that have not yet been mirrored');
export const pendingTags = gauge('quay_repository_mirror_pending_tags', 'number of tags pending mirroring', ['namespace', 'repository']);
export const lastSyncStatus = gauge('quay_repository_mirror_last_sync_status', 'last mirror sync status: 0 fail, 1 success, 2 in progress', ['namespace', 'repository', 'last_error_reason']);
export const syncComplete = gauge('quay_repository_mirror_sync_complete', 'whether the last mirror sync finished: 1 yes, 0 no');
export const syncFailures = counter('quay_repository_mirror_sync_failures_total', 'mirror sync failures by reason', ['namespace', 'reason']);
export const lastSyncTimestamp = gauge('quay_repository_mirror_last_sync_timestamp', 'unix time of the last finished mirror sync');
export const syncDuration = metric('quay_repository_mirror_sync_duration_seconds', () => new client.Histogram({
  name: 'quay_repository_mirror_sync_duration_seconds', help: 'duration of mirror syncs', buckets: [60, 300, 900, 3600],
}));
export const workersActive = gauge('quay_repository_mirror_workers_active', 'mirror syncs running in this process');

export const syncsTotal = counter('quayfleet_repository_mirror_syncs_total', 'mirror syncs by outcome (success, fail, cancel, preempted)', ['outcome']);
export const tagsCopied = counter('quayfleet_repository_mirror_tags_copied_total', 'tags a mirror sync moved to a new manifest');
export const bytesCopied = counter('quayfleet_repository_mirror_bytes_copied_total', 'blob bytes transferred from upstreams into storage');
export const blobsSkipped = counter('quayfleet_repository_mirror_blobs_skipped_total', 'blobs not transferred because the registry already held them');
export const lastSuccess = gauge('quayfleet_repository_mirror_last_success_timestamp_seconds', 'unix time of the last successful sync per mirror', ['namespace', 'repository']);
export const lagTags = gauge('quayfleet_repository_mirror_lag_tags', 'upstream tags the rule selects that are missing or differ here, as of the last listing', ['namespace', 'repository']);

/** Quay's failure reasons, classified by the error text as Quay does. */
export function failureReason(message: string): string {
  const m = message.toLowerCase();
  if (m.includes('not allowed')) return 'invalid_source_registry';
  if (m.includes('decrypt')) return 'decryption_failed';
  if (m.includes('401') || m.includes('403') || m.includes('authentication') || m.includes('unauthorized')) return 'auth_failed';
  if (m.includes('certificate') || m.includes('tls') || m.includes('ssl')) return 'tls_error';
  if (m.includes('timed out') || m.includes('timeout') || m.includes('stalled')) return 'network_timeout';
  if (m.includes('404') || m.includes('not found')) return 'not_found';
  if (m.includes('cannot reach') || m.includes('econnrefused') || m.includes('econnreset') || m.includes('cannot resolve')) return 'connection_error';
  return 'unknown_error';
}
