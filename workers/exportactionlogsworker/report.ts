/**
 * Reporting an export's result (Quay's `_report_results`): a JSON POST to `callback_url` and/or
 * the "Export Action Logs Complete" e-mail to `callback_email`. Each is sent at most once per
 * export id (recorded in `logexport`), so a retry after a failed callback resends only what has
 * not been delivered, never the export and never a delivered report.
 */
import http from 'node:http';
import https from 'node:https';
import type { Config } from '../../shared/config/index.ts';
import { sendMail } from '../../shared/mail/smtp.ts';
import { checkUrl, guardedLookup, type SsrfPolicy } from '../../shared/net/ssrf.ts';

/** Quay's export statuses. */
export type ExportStatus = 'success' | 'failed' | 'timedout' | 'invalidrequest';

/** Quay's callback body. */
export interface ExportReport {
  readonly export_id: string;
  readonly start_time: string;
  readonly end_time: string;
  readonly namespace: string;
  readonly repository: string | null;
  readonly exported_data_url: string | null;
  readonly status: ExportStatus;
}

/** A callback the receiver did not accept (non-2xx or a transport error): retried. */
export class CallbackFailedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CallbackFailedError';
  }
}

/**
 * POSTs `report` to `url` without following redirects; every address the connection resolves to
 * is checked against `policy` (SsrfRefusedError when refused). Resolves on a 2xx answer.
 */
export async function postCallback(url: string, report: ExportReport, policy: SsrfPolicy, timeoutMs: number): Promise<void> {
  const target = checkUrl(policy, url);
  const body = Buffer.from(JSON.stringify(report));
  const transport = target.protocol === 'https:' ? https : http;
  const status = await new Promise<number>((resolve, reject) => {
    const request = transport.request(target, {
      method: 'POST', lookup: guardedLookup(policy), timeout: timeoutMs,
      headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
    }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
    request.end(body);
  }).catch((error: unknown) => {
    if ((error as Error).name === 'SsrfRefusedError') throw error;
    throw new CallbackFailedError(`callback ${target.host}: ${(error as Error).message}`, { cause: error });
  });
  if (status < 200 || status > 299) throw new CallbackFailedError(`callback ${target.host} answered ${status}`);
}

/** Sends Quay's `logsexported` e-mail ("Export Action Logs Complete"). */
export async function sendReportEmail(config: Config, to: string, report: ExportReport): Promise<void> {
  const seconds = config.quay.EXPORT_ACTION_LOGS_SECONDS;
  const lines = report.status === 'success'
    ? [`The exported logs for export ${report.export_id} (${report.start_time} to ${report.end_time}) are ready.`,
      `Download them from ${report.exported_data_url ?? ''}`,
      `The link will remain accessible for ${seconds} seconds before being deleted.`]
    : report.status === 'timedout'
      ? [`The export ${report.export_id} took too long to complete and was stopped. Try a shorter time range.`]
      : [`The export ${report.export_id} failed (${report.status}). Please try again or contact support.`];
  await sendMail(config, { to, subject: 'Export Action Logs Complete', text: lines.join('\n\n') });
}
