/**
 * The periodic quota check (Quay's `_check_quotas`, every QUOTA_NOTIFICATION_WORKER_POLL_PERIOD):
 * for namespaces with a quota notification configured or a threshold claimed, notify thresholds
 * reached but not claimed (limits added or lowered since, or usage that changed while no push
 * crossed them) and re-arm thresholds usage is now below. The API runs the same check for one
 * namespace after its quota or limits change.
 */
import type { Queryable } from '../pool.ts';
import { effectiveLimits, findNamespaceQuota } from './limits.ts';
import { notifyThresholds, rearmThresholds } from './notifications.ts';
import type { QuotaSettings } from './settings.ts';

/** Notifies and re-arms the thresholds of namespace `namespaceId`; returns the jobs enqueued. */
export async function reconcileQuotaNotifications(tx: Queryable, namespaceId: number, settings: QuotaSettings): Promise<number> {
  if (!settings.enabled || !settings.notifications) return 0;
  const { rows } = await tx.query<{ size_bytes: number }>(
    `SELECT size_bytes FROM quotanamespacesize WHERE namespace_user_id = $1 AND backfill_complete`, [namespaceId]);
  if (!rows[0]) return 0;
  const limits = effectiveLimits(await findNamespaceQuota(tx, namespaceId), settings);
  const usage = { namespaceId, usageBytes: rows[0].size_bytes, limits };
  await rearmThresholds(tx, usage);
  const reached = limits.thresholds.filter((t) => usage.usageBytes >= t.allowedBytes);
  return notifyThresholds(tx, usage, reached, settings.notificationCooldownS);
}

/** Namespace ids above `afterId` (ascending, at most `limit`) that have quota notifications or claims. */
export async function namespacesWithQuotaNotifications(db: Queryable, afterId: number, limit: number): Promise<number[]> {
  const { rows } = await db.query<{ id: number }>(
    `SELECT id FROM (
       SELECT namespace_id AS id FROM namespacenotification WHERE event IN ('quota_warning', 'quota_error')
       UNION SELECT namespace_id FROM quotanotificationstate WHERE NOT cleared) ids
     WHERE id > $1 ORDER BY id LIMIT $2`, [afterId, limit]);
  return rows.map((r) => r.id);
}
