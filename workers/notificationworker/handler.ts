/**
 * Delivers one event to one notification (Quay's NotificationWorker.process_queue_item): skip a
 * deleted or disabled notification, apply its event config, claim the delivery record, send,
 * then count the success (failures back to 0) or the failure (+1; the third in a row disables the
 * notification, and the job ends instead of retrying).
 */
import type { NotificationPayload } from '../../queues/notification.ts';
import type { Config } from '../../shared/config/index.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { NOTIFICATION_FAILURE_LIMIT } from '../../shared/db/notifications.ts';
import { ssrfPolicyOf } from '../../shared/net/ssrf.ts';
import { isNotificationMethod } from '../../shared/notifications/methods.ts';
import { PermanentFailureError } from '../../shared/runtime/outcomes.ts';
import type { JobContext, WorkerServices } from '../../shared/runtime/worker.ts';
import { claimDelivery, finishDelivery, pruneDeliveries } from './deliveries.ts';
import { shouldPerform } from './events.ts';
import { METHODS } from './methods.ts';
import { bindNotificationGauges, deliveries, deliveryLatency, disabled, type DeliveryOutcome } from './metrics.ts';
import { countFailure, countSuccess, isDisabled, loadTargetAndClaim } from './targets.ts';

/** What the notificationworker needs from its process. */
export interface NotificationServices extends WorkerServices {
  readonly config: Config;
}

/** One job in this many prunes old delivery records (a bounded batch), so no schedule is needed. */
const PRUNE_EVERY = 1000;

/** Handles one `notification` job. */
export async function handleNotification(payload: NotificationPayload, ctx: JobContext<NotificationServices>): Promise<void> {
  bindNotificationGauges(ctx.db);
  const kind = payload.notificationType === 'namespace' ? 'namespace' : 'repository';
  // Only vulnerability_found may be filtered by the notification's event config: every other
  // event is claimed in the round trip that loads the notification.
  const { target, claimed } = await loadTargetAndClaim(ctx.db, kind, payload.notificationUuid, payload.eventId, payload.event !== 'vulnerability_found');
  const count = (method: string, outcome: DeliveryOutcome) => deliveries.labels({ method, outcome }).inc();
  if (!target) return count('unknown', 'skipped_deleted');
  const method = target.method;
  if (isDisabled(target)) return count(method, 'skipped_disabled');
  if (!isNotificationMethod(method)) throw new PermanentFailureError(`unknown notification method ${JSON.stringify(method)}`);
  if (!shouldPerform(payload.event, payload.eventData, target.eventConfig)) return count(method, 'filtered');

  const claim = claimed ? 'claimed' : await claimDelivery(ctx.db, target.uuid, payload.eventId);
  if (claim !== 'claimed') {
    if (claim === 'in_doubt') ctx.log.warn({ eventId: payload.eventId }, 'an earlier run died while delivering this event; not sending it again');
    return count(method, claim);
  }
  try {
    await METHODS[method]({
      target, event: payload.event, eventData: payload.eventData, db: ctx.db, config: ctx.config,
      policy: ssrfPolicyOf(ctx.config.quay), signal: ctx.signal,
    });
  } catch (error) {
    const failures = await withTransaction(ctx.db, async (tx) => {
      await finishDelivery(tx, target.uuid, payload.eventId, { error: (error as Error).message });
      return countFailure(tx, kind, target.uuid);
    });
    count(method, 'failed');
    if (failures === NOTIFICATION_FAILURE_LIMIT) disabled.labels({ method }).inc();
    if (failures !== undefined && failures >= NOTIFICATION_FAILURE_LIMIT) {
      ctx.log.warn({ err: error, failures }, 'notification disabled after consecutive failures; reset it through the API');
      return;
    }
    throw error;
  }
  // The record and the count in one round trip (a crash before it commits leaves the record
  // 'sending': the event is then in doubt and not sent again).
  await countSuccess(ctx.db, kind, target.uuid, payload.eventId, Date.now());
  count(method, 'delivered');
  deliveryLatency.labels({ method }).observe(Math.max(0, Date.now() - (ctx.job.createdAtMs ?? Date.now())) / 1000);
  if (Math.random() * PRUNE_EVERY < 1) await pruneDeliveries(ctx.db);
}
