/**
 * Quota notifications (Quay's maybe_trigger_quota_notification, reference §3.4): when usage
 * reaches a Warning or Reject threshold, one `quota_warning` / `quota_error` job per configured
 * namespace notification goes to the `notification` queue, through the outbox of the transaction
 * that changed the usage. `quotanotificationstate` makes it once: a threshold is claimed with a
 * compare-and-set (again only after QUOTA_NOTIFICATION_COOLDOWN_SECONDS), and re-armed
 * (`cleared`) when usage drops below it. No configured notification: nothing is claimed.
 */
import { randomUUID } from 'node:crypto';
import { notification } from '../../../queues/notification.ts';
import { enqueueInTransaction } from '../outbox.ts';
import type { Queryable } from '../pool.ts';
import type { EffectiveLimits, Threshold } from './limits.ts';

/** Quay's event name of a threshold type. */
export function quotaEventOf(threshold: Threshold): 'quota_warning' | 'quota_error' {
  return threshold.type === 'Warning' ? 'quota_warning' : 'quota_error';
}

/** Quay's event_data of a quota event (namespace plus the figures of the threshold reached). */
export function quotaEventData(namespace: string, threshold: Threshold, usageBytes: number, quotaBytes: number): Record<string, unknown> {
  return {
    namespace,
    threshold_percent: threshold.percent,
    usage_bytes: usageBytes,
    limit_bytes: quotaBytes,
    usage_percent: quotaBytes > 0 ? Math.floor((usageBytes * 100) / quotaBytes) : 0,
  };
}

/** One namespace's usage against its limits. */
export interface UsageAgainstLimits {
  readonly namespaceId: number;
  readonly usageBytes: number;
  readonly limits: EffectiveLimits;
}

/**
 * Claims each threshold of `thresholds` (all reached) that is not claimed yet (or whose cooldown
 * passed) and has a configured notification, and enqueues its jobs in `tx`. Returns the jobs
 * enqueued.
 */
export async function notifyThresholds(
  tx: Queryable, usage: UsageAgainstLimits, thresholds: readonly Threshold[], cooldownS: number,
): Promise<number> {
  let enqueued = 0;
  for (const threshold of thresholds) {
    const event = quotaEventOf(threshold);
    const targets = await notificationTargets(tx, usage.namespaceId, event);
    if (targets.uuids.length === 0) continue;
    if (!(await claimThreshold(tx, usage.namespaceId, threshold.percent, cooldownS))) continue;
    const eventData = quotaEventData(targets.namespace, threshold, usage.usageBytes, usage.limits.quotaBytes);
    for (const notificationUuid of targets.uuids) {
      await enqueueInTransaction(tx, notification, {
        v: 1, notificationUuid, eventId: randomUUID(), event, eventData, performerData: {}, notificationType: 'namespace',
      });
      enqueued++;
    }
  }
  return enqueued;
}

/** The thresholds usage reached going from `beforeBytes` to `afterBytes`. */
export function crossedThresholds(limits: EffectiveLimits, beforeBytes: number, afterBytes: number): Threshold[] {
  return limits.thresholds.filter((t) => beforeBytes < t.allowedBytes && afterBytes >= t.allowedBytes);
}

/** Re-arms namespace `namespaceId`'s claimed thresholds that `usageBytes` is below; returns how many. */
export async function rearmThresholds(tx: Queryable, usage: UsageAgainstLimits): Promise<number> {
  const reached = usage.limits.thresholds.filter((t) => usage.usageBytes >= t.allowedBytes).map((t) => t.percent);
  const result = await tx.query(
    `UPDATE quotanotificationstate SET cleared = true
     WHERE namespace_id = $1 AND NOT cleared AND NOT (threshold_percent = ANY($2::int[]))`, [usage.namespaceId, reached]);
  return result.rowCount ?? 0;
}

/**
 * Re-arms claimed thresholds of the namespace's own quota that `usageBytes` is below, in one
 * statement (GC's transactions call it after a subtraction, without the config at hand; states of
 * the system default are re-armed by the worker's periodic check).
 */
export async function rearmOwnQuotaThresholds(tx: Queryable, namespaceId: number, usageBytes: number): Promise<void> {
  await tx.query(
    `UPDATE quotanotificationstate s SET cleared = true
     FROM userorganizationquota q
     WHERE s.namespace_id = $1 AND q.namespace_id = $1 AND NOT s.cleared
       AND $2::bigint < floor(q.limit_bytes::numeric * s.threshold_percent / 100)`, [namespaceId, usageBytes]);
}

/** Forgets the notification state of `percents` (all when undefined) of a namespace: its limit or quota went away. */
export async function forgetThresholds(tx: Queryable, namespaceId: number, percents?: readonly number[]): Promise<void> {
  await tx.query(
    `DELETE FROM quotanotificationstate WHERE namespace_id = $1 AND ($2::int[] IS NULL OR threshold_percent = ANY($2::int[]))`,
    [namespaceId, percents ? [...percents] : null]);
}

async function notificationTargets(tx: Queryable, namespaceId: number, event: string): Promise<{ namespace: string; uuids: string[] }> {
  const { rows } = await tx.query<{ uuid: string; username: string }>(
    `SELECT n.uuid::text AS uuid, ns.username FROM namespacenotification n JOIN namespace ns ON ns.id = n.namespace_id
     WHERE n.namespace_id = $1 AND n.event = $2 ORDER BY n.id`, [namespaceId, event]);
  return { namespace: rows[0]?.username ?? '', uuids: rows.map((r) => r.uuid) };
}

// The compare-and-set: only one transaction gets the row back per claim window.
async function claimThreshold(tx: Queryable, namespaceId: number, percent: number, cooldownS: number): Promise<boolean> {
  const { rows } = await tx.query(
    `INSERT INTO quotanotificationstate AS s (namespace_id, threshold_percent, last_notified_at, cleared)
     VALUES ($1, $2, now(), false)
     ON CONFLICT (namespace_id, threshold_percent) DO UPDATE SET last_notified_at = now(), cleared = false
     WHERE s.cleared OR s.last_notified_at IS NULL OR s.last_notified_at < now() - make_interval(secs => $3)
     RETURNING s.id`, [namespaceId, percent, cooldownS]);
  return rows.length > 0;
}
