/**
 * The exportactionlogsworker: exports action logs to storage and reports the link (queue
 * `exportactionlogs`), and removes exported files past their retention on a schedule.
 */
import { exportactionlogs, type ExportActionLogsPayload } from '../../queues/exportactionlogs.ts';
import { defineWorker, type JobContext } from '../../shared/runtime/worker.ts';
import { expirySweepSeconds, removeExpiredExports } from './expiry.ts';
import { handleExport, type ExportServices } from './handler.ts';

async function handleJob(payload: ExportActionLogsPayload, ctx: JobContext<ExportServices>): Promise<void> {
  if ('exportId' in payload) await handleExport(payload, ctx);
  else await removeExpiredExports(ctx);
}

/** The worker declaration (listed in workers/index.ts). */
export const exportactionlogsworker = defineWorker<ExportActionLogsPayload, ExportServices>({
  name: 'exportactionlogsworker',
  queue: exportactionlogs,
  // Each export holds one Postgres connection and one part buffer (8 MiB) while it streams.
  concurrency: 2,
  schedule: (config) => [{
    id: 'exportactionlogs-expiry', everySeconds: expirySweepSeconds(config.quay.EXPORT_ACTION_LOGS_SECONDS), payload: { v: 1, sweep: 'expired-files' },
  }],
  gate: (config) => {
    if (!config.quay.FEATURE_LOG_EXPORT) return { enabled: false, reason: 'FEATURE_LOG_EXPORT is false: log exports are not offered' };
    if (config.quay.LOGS_MODEL !== 'database') {
      return { enabled: false, reason: `LOGS_MODEL is ${config.quay.LOGS_MODEL}: Method not implemented (quayfleet exports only the database logs model)` };
    }
    return { enabled: true, reason: 'FEATURE_LOG_EXPORT is true' };
  },
  handler: handleJob,
});

export default exportactionlogsworker;
