/** The exportactionlogsworker: exports action logs to storage and reports the link (queue `exportactionlogs`). */
import { exportactionlogs, type ExportActionLogsPayload } from '../../queues/exportactionlogs.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { handleExport, type ExportServices } from './handler.ts';

/** The worker declaration (listed in workers/index.ts). */
export const exportactionlogsworker = defineWorker<ExportActionLogsPayload, ExportServices>({
  name: 'exportactionlogsworker',
  queue: exportactionlogs,
  // Each export holds one Postgres connection and one part buffer (8 MiB) while it streams.
  concurrency: 2,
  gate: (config) => {
    if (!config.quay.FEATURE_LOG_EXPORT) return { enabled: false, reason: 'FEATURE_LOG_EXPORT is false: log exports are not offered' };
    if (config.quay.LOGS_MODEL !== 'database') {
      return { enabled: false, reason: `LOGS_MODEL is ${config.quay.LOGS_MODEL}: Method not implemented (quayfleet exports only the database logs model)` };
    }
    return { enabled: true, reason: 'FEATURE_LOG_EXPORT is true' };
  },
  handler: handleExport,
});

export default exportactionlogsworker;
