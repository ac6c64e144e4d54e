/**
 * Quay's quota JSON shapes (reference seed-requirements §5.1): a quota (`id`, `limit_bytes`,
 * `default_config`, `limits`, `default_config_exists`), a limit (`id`, `type`, `limit_percent`:
 * the request says `threshold_percent`, GAP-8), and the `quota_report` of organizations and
 * repositories. Also the fields other routes add when FEATURE_QUOTA_MANAGEMENT is on.
 */
import { findNamespaceQuota, type NamespaceQuota, type QuotaLimit } from '../../shared/db/quota/limits.ts';
import { namespaceQuotaReport, repositoryQuotaReports, type RepositoryQuotaReport } from '../../shared/db/quota/report.ts';
import { quotaSettings, type QuotaSettings } from '../../shared/db/quota/settings.ts';
import type { RegistryDeps } from '../deps.ts';

/** Quay's limit_view. */
export function limitView(limit: QuotaLimit): Record<string, unknown> {
  return { id: limit.id, type: limit.type, limit_percent: limit.percent };
}

/** Quay's quota_view of a configured quota. */
export function quotaView(quota: NamespaceQuota, settings: QuotaSettings): Record<string, unknown> {
  return {
    id: quota.id, limit_bytes: quota.limitBytes, default_config: false,
    limits: quota.limits.map(limitView), default_config_exists: settings.defaultRejectBytes > 0,
  };
}

/**
 * A namespace's quota list: its quota, else the system default (DEFAULT_SYSTEM_REJECT_QUOTA_BYTES,
 * `default_config: true`, no id: it is not a row), else `[]`.
 */
export function quotaListView(quota: NamespaceQuota | undefined, settings: QuotaSettings): Record<string, unknown>[] {
  if (quota) return [quotaView(quota, settings)];
  if (settings.defaultRejectBytes <= 0) return [];
  return [{ id: null, limit_bytes: settings.defaultRejectBytes, default_config: true, limits: [], default_config_exists: true }];
}

/**
 * The quota fields of Quay's organization view (`quotas`, `quota_report`); none when
 * FEATURE_QUOTA_MANAGEMENT is off.
 */
export async function organizationQuotaFields(deps: RegistryDeps, namespaceId: number): Promise<Record<string, unknown>> {
  const settings = quotaSettings(deps.config);
  if (!settings.enabled) return {};
  const [quota, report] = await Promise.all([findNamespaceQuota(deps.db, namespaceId), namespaceQuotaReport(deps.db, namespaceId, settings)]);
  return {
    quotas: quota ? [{ id: quota.id, limit_bytes: quota.limitBytes, limits: quota.limits.map(limitView) }] : [],
    quota_report: report,
  };
}

/** The `quota_report` of each listed repository (`?quota=true`), or undefined when quota management is off. */
export async function repositoryQuotaFields(
  deps: RegistryDeps, repositories: readonly { readonly id: number; readonly namespace_user_id: number }[],
): Promise<Map<number, RepositoryQuotaReport> | undefined> {
  const settings = quotaSettings(deps.config);
  if (!settings.enabled) return undefined;
  return repositoryQuotaReports(deps.db, repositories, settings);
}
