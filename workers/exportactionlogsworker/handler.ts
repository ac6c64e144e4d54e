/**
 * One `exportactionlogs` job: stream the export (once; its result is recorded in `logexport`),
 * then deliver whatever report is still owed. A retry after a failed callback therefore resends
 * only the callback. An export that fails on its last attempt is reported `failed`; one cut off
 * by a time limit is reported `timedout` (once, not followed by `failed` as in Quay).
 */
import { randomUUID } from 'node:crypto';
import type { ExportRequestPayload } from '../../queues/exportactionlogs.ts';
import type { Config } from '../../shared/config/index.ts';
import { mailConfigured } from '../../shared/mail/smtp.ts';
import { ssrfPolicyOf, SsrfRefusedError } from '../../shared/net/ssrf.ts';
import { PermanentFailureError } from '../../shared/runtime/outcomes.ts';
import type { JobContext, WorkerServices } from '../../shared/runtime/worker.ts';
import type { DistributedStorage } from '../../shared/storage/distributed.ts';
import { ExportTimedOutError, streamExport } from './export.ts';
import { exportDuration, exportedBytes, exportedRows, exportsTotal } from './metrics.ts';
import { CallbackFailedError, postCallback, sendReportEmail, type ExportReport, type ExportStatus } from './report.ts';
import { claimExportFile, finishExport, loadExport, markReported, type ExportRow } from './rows.ts';

/** What the exportactionlogsworker needs from its process. */
export interface ExportServices extends WorkerServices {
  readonly storage: DistributedStorage;
  readonly config: Config;
}

const FINAL: ReadonlySet<string> = new Set(['success', 'failed', 'timedout', 'invalidrequest']);

/** Handles one export job. */
export async function handleExport(payload: ExportRequestPayload, ctx: JobContext<ExportServices>): Promise<void> {
  let row = await loadExport(ctx.db, payload.exportId);
  if (!row) throw new PermanentFailureError(`export ${payload.exportId} has no logexport row`);
  if (!FINAL.has(row.status)) {
    try {
      await runExport(row, ctx);
    } catch (error) {
      const lastAttempt = ctx.job.attempt >= ctx.job.maxAttempts;
      if (!lastAttempt || ctx.signal.aborted) throw error;
      await finishExport(ctx.db, row.export_id, { status: 'failed', error: (error as Error).message });
      exportsTotal.labels({ outcome: 'failed' }).inc();
      row = (await loadExport(ctx.db, payload.exportId))!;
      await report(row, ctx).catch((reportError: unknown) => ctx.log.warn({ err: reportError }, 'failure report not delivered'));
      throw error;
    }
    row = (await loadExport(ctx.db, payload.exportId))!;
  }
  await report(row, ctx);
}

async function runExport(row: ExportRow, ctx: JobContext<ExportServices>): Promise<void> {
  const { config, storage } = ctx;
  const q = config.quay;
  // The file is claimed before it is written, so the expiry sweep finds it even if this attempt
  // dies after the upload completes; the hold outlasts the attempt (its time limit plus the link's lifetime).
  const fresh = { key: `${q.EXPORT_ACTION_LOGS_STORAGE_PATH}/${row.export_id}-${randomUUID()}`, location: storage.preferredLocation };
  const { key, location } = await claimExportFile(ctx.db, row.export_id, fresh, storage.locations,
    q.EXPORT_ACTION_LOGS_MAXIMUM_SECONDS + q.EXPORT_ACTION_LOGS_SECONDS);
  const store = storage.store(location);
  const fileName = key.slice(key.lastIndexOf('/') + 1);
  const started = process.hrtime.bigint();
  try {
    const result = await streamExport(ctx.db, store, key,
      { exportId: row.export_id, start: row.start_time, end: row.end_time, namespace: row.namespace_name ?? '', repository: row.repository_name },
      { namespaceId: row.namespace_id, repositoryId: row.repository_id, start: row.start_time, end: row.end_time },
      { maxQueryMs: q.EXPORT_ACTION_LOGS_MAXIMUM_QUERY_TIME_SECONDS * 1000, maxTotalMs: q.EXPORT_ACTION_LOGS_MAXIMUM_SECONDS * 1000 },
      ctx.signal);
    const url = store.capabilities.signedUrls
      ? await store.signedReadUrl(key, q.EXPORT_ACTION_LOGS_SECONDS)
      : `${q.PREFERRED_URL_SCHEME}://${q.SERVER_HOSTNAME}/exportedlogs/${fileName}`;
    await finishExport(ctx.db, row.export_id, {
      status: 'success', url, rows: result.rows, bytes: result.bytes, retentionSeconds: q.EXPORT_ACTION_LOGS_SECONDS,
    });
    exportsTotal.labels({ outcome: 'success' }).inc();
    exportedRows.inc(result.rows);
    exportedBytes.inc(result.bytes);
    exportDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    ctx.log.info({ exportId: row.export_id, rows: result.rows, bytes: result.bytes, location }, 'action logs exported');
  } catch (error) {
    if (!(error instanceof ExportTimedOutError)) throw error;
    await finishExport(ctx.db, row.export_id, { status: 'timedout', error: error.message });
    exportsTotal.labels({ outcome: 'timedout' }).inc();
    ctx.log.warn({ exportId: row.export_id, err: error }, 'action log export timed out');
  }
}

/** Delivers the callback and the e-mail not yet delivered; throws CallbackFailedError (retry) when one failed. */
async function report(row: ExportRow, ctx: JobContext<ExportServices>): Promise<void> {
  const body: ExportReport = {
    export_id: row.export_id, start_time: mmddyyyy(row.start_time), end_time: mmddyyyy(row.end_time),
    namespace: row.namespace_name ?? '', repository: row.repository_name, exported_data_url: row.url, status: row.status as ExportStatus,
  };
  const failures: Error[] = [];
  if (row.callback_url && !row.callback_sent) {
    try {
      await postCallback(row.callback_url, body, ssrfPolicyOf(ctx.config.quay), ctx.config.quay.NOTIFICATION_SEND_TIMEOUT * 1000);
      await markReported(ctx.db, row.export_id, 'callback');
    } catch (error) {
      if (error instanceof SsrfRefusedError) {
        // As Quay: a refused callback is logged and skipped; the e-mail still goes out.
        ctx.log.warn({ exportId: row.export_id, err: error }, 'export callback refused by the SSRF rules; not sent');
        await markReported(ctx.db, row.export_id, 'callback');
      } else {
        failures.push(error as Error);
      }
    }
  }
  if (row.callback_email && !row.email_sent) {
    if (!mailConfigured(ctx.config)) {
      ctx.log.warn({ exportId: row.export_id }, 'export e-mail not sent: mailing is not configured (FEATURE_MAILING, MAIL_SERVER)');
      await markReported(ctx.db, row.export_id, 'email');
    } else {
      try {
        await sendReportEmail(ctx.config, row.callback_email, body);
        await markReported(ctx.db, row.export_id, 'email');
      } catch (error) {
        failures.push(error as Error);
      }
    }
  }
  if (failures.length > 0) throw new CallbackFailedError(`export report not delivered: ${failures.map((f) => f.message).join('; ')}`, { cause: failures[0] });
}

/** The callback's dates as Quay's body carries them (`MM/DD/YYYY`; the end is the exclusive end date). */
function mmddyyyy(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(date.getUTCMonth() + 1)}/${pad(date.getUTCDate())}/${date.getUTCFullYear()}`;
}
