/**
 * Handles one Clair v4 notification (Quay's SecurityScanningNotificationWorker): page through it,
 * fan each page out as `vulnerability_found` events in one transaction, checkpoint the next
 * page's cursor so a retried or redelivered job resumes there, then DELETE it at Clair. A 404
 * from Clair ends the job as done; any other Clair failure is retried with the queue's backoff.
 */
import type { SecScanV4Payload } from '../../queues/secscanv4.ts';
import type { Config } from '../../shared/config/index.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import type { JobContext, WorkerServices } from '../../shared/runtime/worker.ts';
import { deleteNotification, fetchNotificationPage, type ClairEndpoint } from './clair.ts';
import { fanOutPage } from './fan-out.ts';
import { notificationsHandled, pagesProcessed, vulnerabilityEvents } from './metrics.ts';

/** What the securityscanningnotificationworker needs from its process. */
export interface SecScanServices extends WorkerServices {
  readonly config: Config;
  /** Wakes the outbox relay after a page's events commit (the process's relay), when there is one. */
  readonly onOutboxWrite?: () => void;
}

/** Resume state: the cursor of the next page to fetch (null: the first), and pages done so far. */
export interface SecScanCheckpoint {
  readonly next: string | null;
  readonly pages: number;
}

/** Quay retries the final DELETE up to 5 times and ignores a failure. */
const DELETE_TRIES = 5;

/** The Clair endpoint of a config; throws when SECURITY_SCANNER_V4_ENDPOINT is unset (the gate prevents it). */
export function clairOf(config: Config): ClairEndpoint {
  const endpoint = config.quay.SECURITY_SCANNER_V4_ENDPOINT;
  if (!endpoint) throw new Error('SECURITY_SCANNER_V4_ENDPOINT is not set');
  return { endpoint, psk: config.quay.SECURITY_SCANNER_V4_PSK };
}

/** Handles one `secscanv4` job. */
export async function handleSecScanNotification(payload: SecScanV4Payload, ctx: JobContext<SecScanServices, SecScanCheckpoint>): Promise<void> {
  const clair = clairOf(ctx.config);
  const id = payload.notificationId;
  let state: SecScanCheckpoint = ctx.resumeFrom ?? { next: null, pages: 0 };
  if (state.pages > 0) ctx.log.info({ pages: state.pages }, 'resuming the notification at its checkpoint');
  for (;;) {
    if (ctx.signal.aborted) throw new Error('interrupted by shutdown; the next run resumes at the checkpoint');
    const page = await fetchNotificationPage(clair, id, state.next ?? undefined, ctx.signal);
    if (!page) {
      notificationsHandled.labels({ outcome: 'gone' }).inc();
      ctx.log.info('Clair no longer knows this notification; done');
      return;
    }
    const outcome = await withTransaction(ctx.db, (tx) => fanOutPage(tx, id, page.notifications, { site: ctx.config.quay, nowMs: Date.now() }));
    if (outcome.jobs > 0) ctx.onOutboxWrite?.();
    pagesProcessed.inc();
    vulnerabilityEvents.inc(outcome.events);
    state = { next: page.next ?? null, pages: state.pages + 1 };
    ctx.log.debug({ ...outcome, pages: state.pages }, 'notification page processed');
    if (!page.next) break;
    await ctx.checkpoint(state);
  }
  for (let attempt = 1; attempt <= DELETE_TRIES; attempt++) {
    try {
      await deleteNotification(clair, id, ctx.signal);
      break;
    } catch (error) {
      if (attempt === DELETE_TRIES) ctx.log.warn({ err: error }, 'could not mark the notification handled at Clair; it will re-deliver it');
    }
  }
  notificationsHandled.labels({ outcome: 'done' }).inc();
  ctx.log.info({ pages: state.pages }, 'Clair notification handled');
}
