/**
 * What the API reports (Quay's get_quota_for_view / get_repo_quota_for_view): the bytes used, the
 * configured quota (the namespace's own, else the system default, else null) and, for a
 * namespace, whether its backfill is still waiting ("Backfill Queued" in Quay's UI).
 */
import type { Queryable } from '../pool.ts';
import { findNamespaceQuota, findNamespaceQuotas, type NamespaceQuota } from './limits.ts';
import type { QuotaSettings } from './settings.ts';

/** Quay's backfill states; `running` never persists here (a backfill is one transaction). */
export type BackfillStatus = 'waiting' | 'running' | 'complete';

/** A namespace's `quota_report`. */
export interface NamespaceQuotaReport {
  readonly quota_bytes: number;
  readonly configured_quota: number | null;
  /** Quay keeps this older name beside `backfill_status`, with the same value. */
  readonly running_backfill: BackfillStatus;
  readonly backfill_status: BackfillStatus;
}

/** A repository's `quota_report`. */
export interface RepositoryQuotaReport {
  readonly quota_bytes: number;
  readonly configured_quota: number | null;
}

/** The configured quota Quay reports: the namespace's, else the system default when set, else null. */
export function configuredQuota(quota: NamespaceQuota | undefined, settings: QuotaSettings): number | null {
  if (quota) return quota.limitBytes;
  return settings.defaultRejectBytes > 0 ? settings.defaultRejectBytes : null;
}

/** Namespace `namespaceId`'s report; usage reads 0 until its totals are complete. */
export async function namespaceQuotaReport(db: Queryable, namespaceId: number, settings: QuotaSettings): Promise<NamespaceQuotaReport> {
  const [quota, totals] = await Promise.all([
    findNamespaceQuota(db, namespaceId),
    db.query<{ size_bytes: number; complete: boolean; started: boolean }>(
      `SELECT size_bytes, backfill_complete AS complete, backfill_start_ms IS NOT NULL AS started
       FROM quotanamespacesize WHERE namespace_user_id = $1`, [namespaceId]),
  ]);
  const row = totals.rows[0];
  const status: BackfillStatus = !row || (!row.started && !row.complete) ? 'waiting' : row.complete ? 'complete' : 'running';
  return {
    quota_bytes: row?.complete ? row.size_bytes : 0,
    configured_quota: configuredQuota(quota, settings),
    running_backfill: status,
    backfill_status: status,
  };
}

/** The reports of several repositories, by repository id (a repository without a total reads 0). */
export async function repositoryQuotaReports(
  db: Queryable, repositories: readonly { readonly id: number; readonly namespace_user_id: number }[], settings: QuotaSettings,
): Promise<Map<number, RepositoryQuotaReport>> {
  if (repositories.length === 0) return new Map();
  const [quotas, sizes] = await Promise.all([
    findNamespaceQuotas(db, repositories.map((r) => r.namespace_user_id)),
    db.query<{ repository_id: number; size_bytes: number }>(
      `SELECT repository_id, size_bytes FROM quotarepositorysize WHERE repository_id = ANY($1::bigint[]) AND backfill_complete`,
      [repositories.map((r) => r.id)]),
  ]);
  const bytes = new Map(sizes.rows.map((r) => [r.repository_id, r.size_bytes]));
  return new Map(repositories.map((r) => [r.id, {
    quota_bytes: bytes.get(r.id) ?? 0,
    configured_quota: configuredQuota(quotas.get(r.namespace_user_id), settings),
  }]));
}
