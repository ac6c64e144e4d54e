/**
 * The exportactionlogsworker: exports action logs to storage and reports the link (queue
 * `exportactionlogs`), and removes each exported file when its retention ends (one delayed job
 * per file; no periodic tick, so an idle deployment scaled to zero stays there).
 */
import { exportactionlogs, type ExportActionLogsPayload } from '../../queues/exportactionlogs.ts';
import { defineWorker, type JobContext } from '../../shared/runtime/worker.ts';
import { reconcileRemovals, removeExportFile, RETIRED_SWEEP_SCHEDULE } from './expiry.ts';
import { handleExport, type ExportServices } from './handler.ts';

async function handleJob(payload: ExportActionLogsPayload, ctx: JobContext<ExportServices>): Promise<void> {
  if ('exportId' in payload) await handleExport(payload, ctx);
  else if ('removeExportFile' in payload) await removeExportFile(payload, ctx);
  // A tick of the retired sweep, queued before this version started: reconcile instead.
  else await reconcileRemovals(ctx.db, ctx.storage.locations, ctx.enqueue, ctx.log);
}

/** The worker declaration (listed in workers/index.ts). */
export const exportactionlogsworker = defineWorker<ExportActionLogsPayload, ExportServices>({
  name: 'exportactionlogsworker',
  queue: exportactionlogs,
  // Each export holds one Postgres connection and one part buffer (8 MiB) while it streams.
  concurrency: 2,
  async onStart(ctx) {
    if (await ctx.removeSchedule(RETIRED_SWEEP_SCHEDULE)) ctx.log.info({ schedule: RETIRED_SWEEP_SCHEDULE }, 'retired export sweep schedule removed');
    await reconcileRemovals(ctx.db, ctx.storage.locations, ctx.enqueue, ctx.log);
  },
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
