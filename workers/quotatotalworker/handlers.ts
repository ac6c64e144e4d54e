/**
 * The quota worker's jobs on the `quotatotal` queue:
 * - a namespace job (`namespaceId`): compute that namespace's totals from scratch (backfill.ts),
 *   then check its quota notifications against the fresh total;
 * - the backfill tick (schedule `quota-backfill`): note namespaces that need a backfill and
 *   enqueue one job per namespace whose QUOTA_TOTAL_DELAY_SECONDS has passed (dedupe id per
 *   namespace, so a tick never doubles a job);
 * - the notification tick (schedule `quota-notifications`): Quay's `_check_quotas`.
 */
import { quotatotal, type QuotaTotalPayload } from '../../queues/quotatotal.ts';
import type { Config } from '../../shared/config/index.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { backfillNamespace, namespacesDueForBackfill, queueNamespacesNeedingBackfill } from '../../shared/db/quota/backfill.ts';
import { namespacesWithQuotaNotifications, reconcileQuotaNotifications } from '../../shared/db/quota/checks.ts';
import { bindQuotaGauges, quotaBackfills } from '../../shared/db/quota/metrics.ts';
import { quotaSettings } from '../../shared/db/quota/settings.ts';
import { mapBounded } from '../../shared/storage/concurrency.ts';
import type { JobContext, WorkerServices } from '../../shared/runtime/worker.ts';

/** What the quota workers need from their process. */
export interface QuotaServices extends WorkerServices {
  readonly config: Config;
}

/** Schedule ids; the handler tells the ticks apart by them. */
export const BACKFILL_SCHEDULE = 'quota-backfill';
export const NOTIFICATION_SCHEDULE = 'quota-notifications';

/** Namespaces recorded as needing a backfill per tick (each is one cheap row). */
const DISCOVERY_PER_TICK = 1000;
/** Namespaces checked per page of the notification tick. */
const CHECK_PAGE = 500;

type Ctx = JobContext<QuotaServices>;

/** Handles one `quotatotal` job. */
export async function handleQuotaTotal(payload: QuotaTotalPayload, ctx: Ctx): Promise<void> {
  const settings = quotaSettings(ctx.config);
  bindQuotaGauges(ctx.db, settings);
  if (payload.namespaceId !== undefined) return backfillOne(ctx, payload.namespaceId);
  if (ctx.job.scheduleId === NOTIFICATION_SCHEDULE) return checkNotifications(ctx);
  return backfillTick(ctx);
}

async function backfillOne(ctx: Ctx, namespaceId: number): Promise<void> {
  const settings = quotaSettings(ctx.config);
  const outcome = await backfillNamespace(ctx.db, namespaceId);
  quotaBackfills.inc({ outcome });
  if (outcome === 'computed') await withTransaction(ctx.db, (tx) => reconcileQuotaNotifications(tx, namespaceId, settings));
  ctx.log.info({ outcome }, outcome === 'computed' ? 'namespace quota totals computed' : 'namespace quota backfill not needed');
}

async function backfillTick(ctx: Ctx): Promise<void> {
  const settings = quotaSettings(ctx.config);
  const nowMs = Date.now();
  const queued = await queueNamespacesNeedingBackfill(ctx.db, nowMs, DISCOVERY_PER_TICK);
  const due = await namespacesDueForBackfill(ctx.db, nowMs, settings.totalDelayS * 1000, settings.backfillBatch);
  await mapBounded(due, 16, (ns) => ctx.enqueue(quotatotal, { v: 1, namespaceId: ns.id, namespace: ns.name }));
  if (queued > 0 || due.length > 0) ctx.log.info({ queued, enqueued: due.length }, 'quota backfill tick');
}

async function checkNotifications(ctx: Ctx): Promise<void> {
  const settings = quotaSettings(ctx.config);
  if (!settings.notifications) return;
  let afterId = 0;
  let enqueued = 0;
  for (;;) {
    const ids = await namespacesWithQuotaNotifications(ctx.db, afterId, CHECK_PAGE);
    if (ids.length === 0) break;
    for (const id of ids) {
      if (ctx.signal.aborted) throw new Error('interrupted by shutdown; the next tick checks again');
      enqueued += await withTransaction(ctx.db, (tx) => reconcileQuotaNotifications(tx, id, settings));
    }
    afterId = ids[ids.length - 1]!;
  }
  if (enqueued > 0) ctx.log.info({ enqueued }, 'quota notifications enqueued by the periodic check');
}
