/**
 * Export metrics. Quay exports none for log exports; these follow quayfleet's naming.
 */
import { client, metric } from '../../shared/metrics/index.ts';

/** Exports finished, by outcome (success, failed, timedout). */
export const exportsTotal = metric('quayfleet_log_exports_total', () => new client.Counter({
  name: 'quayfleet_log_exports_total', help: 'action log exports finished, by outcome', labelNames: ['outcome'],
}));
/** Log entries written into export documents. */
export const exportedRows = metric('quayfleet_log_export_rows_total', () => new client.Counter({
  name: 'quayfleet_log_export_rows_total', help: 'action log entries written to export documents',
}));
/** Bytes of export documents written to storage. */
export const exportedBytes = metric('quayfleet_log_export_bytes_total', () => new client.Counter({
  name: 'quayfleet_log_export_bytes_total', help: 'bytes of action log export documents written to storage',
}));
/** Time to stream one export into storage. */
export const exportDuration = metric('quayfleet_log_export_duration_seconds', () => new client.Histogram({
  name: 'quayfleet_log_export_duration_seconds', help: 'time to stream one action log export into storage',
  buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 1800, 7200],
}));
/** Exported files removed after their retention (Quay removes none). */
export const exportedFilesRemoved = metric('quayfleet_log_export_files_removed_total', () => new client.Counter({
  name: 'quayfleet_log_export_files_removed_total', help: 'exported action log files removed from storage after their retention',
}));
