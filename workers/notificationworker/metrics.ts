/**
 * Notification delivery metrics. Quay exports none for notifications beyond the queue gauges; these
 * count every delivery decision by method and outcome, and the notifications disabled by failures.
 */
import type { Queryable } from '../../shared/db/pool.ts';
import { client, metric } from '../../shared/metrics/index.ts';
import { countDisabled } from './targets.ts';

/**
 * How one job ended for its notification:
 * - delivered: the target accepted it (2xx, SMTP accepted, row stored);
 * - failed: the attempt failed (counted towards disabling; retried while attempts remain);
 * - duplicate: this (notification, event id) was already delivered;
 * - in_doubt: an earlier run died while sending; not sent again (at most once);
 * - filtered: the event does not meet the notification's event config (e.g. severity);
 * - skipped_disabled: the notification had failed 3 times in a row;
 * - skipped_deleted: the notification no longer exists.
 */
export type DeliveryOutcome = 'delivered' | 'failed' | 'duplicate' | 'in_doubt' | 'filtered' | 'skipped_disabled' | 'skipped_deleted';

/** Deliveries by method and outcome. */
export const deliveries = metric('quayfleet_notification_deliveries_total', () => new client.Counter({
  name: 'quayfleet_notification_deliveries_total',
  help: 'notification jobs by delivery method and outcome (delivered, failed, duplicate, in_doubt, filtered, skipped_disabled, skipped_deleted)',
  labelNames: ['method', 'outcome'],
}));

/** Notifications that reached the failure limit (disabled until reset), by method. */
export const disabled = metric('quayfleet_notifications_disabled_total', () => new client.Counter({
  name: 'quayfleet_notifications_disabled_total',
  help: 'notifications disabled after 3 consecutive failed deliveries, by method',
  labelNames: ['method'],
}));

/** Seconds from the job's creation (the event) to the target's answer, by method. */
export const deliveryLatency = metric('quayfleet_notification_delivery_seconds', () => new client.Histogram({
  name: 'quayfleet_notification_delivery_seconds',
  help: 'seconds from the event being queued to its successful delivery, by method',
  labelNames: ['method'],
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
}));

let source: Queryable | undefined;

/** Lets the disabled-notifications gauge read from `db` at scrape time (first call wins). */
export function bindNotificationGauges(db: Queryable): void {
  source ??= db;
}

metric('quayfleet_notifications_disabled', () => new client.Gauge({
  name: 'quayfleet_notifications_disabled',
  help: 'repository and namespace notifications currently disabled (3 or more consecutive failures), by method',
  labelNames: ['method'],
  async collect() {
    if (!source) return;
    this.reset();
    for (const row of await countDisabled(source)) this.labels({ method: row.method }).set(row.count);
  },
}));
