/**
 * The quota settings of a process, read from the Quay config once per Config object.
 *
 * Glossary (used by every file of this folder)
 * - total: a running size in bytes (`quotanamespacesize`, `quotarepositorysize`).
 * - complete: a total the running updates maintain (`backfill_complete`); anything else is stale
 *   or missing and belongs to the backfill.
 * - reference count: `quotarepositoryblob` (manifest links of a blob in a repository) and
 *   `quotanamespaceblob` (repositories of the namespace holding the blob); a size is added or
 *   subtracted exactly when a count goes 0 -> 1 or 1 -> 0.
 * - limit: a Warning or Reject threshold, a percentage of the namespace's quota.
 *
 * Keys the shared config schema does not list yet are read here from the loose config, with
 * Quay's defaults; a wrong type is reported with its key the first time the settings are read.
 */
import { z } from 'zod';
import type { Config } from '../../config/index.ts';

const seconds = z.union([z.number().int().nonnegative(), z.string().regex(/^\s*\d+\s*$/).transform((s) => Number(s.trim()))]);

const extraKeys = z.looseObject({
  FEATURE_VERIFY_QUOTA: z.boolean().default(true),
  QUOTA_INVALIDATE_TOTALS: z.boolean().default(true),
  // Quay gates namespace quota notifications behind this flag; a namespace notification for
  // quota_warning/quota_error must exist as well, so on by default costs nothing unconfigured.
  FEATURE_QUOTA_NOTIFICATIONS: z.boolean().default(true),
  QUOTA_NOTIFICATION_COOLDOWN_SECONDS: seconds.default(86_400),
  QUOTA_NOTIFICATION_WORKER_POLL_PERIOD: seconds.default(300),
  QUOTA_BACKFILL_POLL_PERIOD: seconds.default(15),
  QUOTA_BACKFILL_BATCH_SIZE: z.number().int().positive().default(100),
  QUOTA_REGISTRY_SIZE_POLL_PERIOD: seconds.default(60),
  // quayfleet extension: how many namespaces (largest first) get their own metric series.
  QUOTA_METRICS_TOP_N: z.number().int().nonnegative().default(20),
});

/** What the quota code reads from the config. */
export interface QuotaSettings {
  /** FEATURE_QUOTA_MANAGEMENT: totals are maintained and reported, limits enforced. */
  readonly enabled: boolean;
  /** FEATURE_VERIFY_QUOTA: pushes are checked against the limits (with `enabled`). */
  readonly verify: boolean;
  /** QUOTA_INVALIDATE_TOTALS: a push while quota management is off marks its namespace stale. */
  readonly invalidateTotals: boolean;
  /** DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: the reject limit of a namespace without a quota; 0 = none. */
  readonly defaultRejectBytes: number;
  /** FEATURE_QUOTA_NOTIFICATIONS. */
  readonly notifications: boolean;
  readonly notificationCooldownS: number;
  readonly notificationPollS: number;
  /** QUOTA_BACKFILL: the backfill worker runs. */
  readonly backfill: boolean;
  /** QUOTA_TOTAL_DELAY_SECONDS: wait between finding a namespace without totals and computing them. */
  readonly totalDelayS: number;
  readonly backfillPollS: number;
  /** Most backfill jobs one scheduler tick enqueues. */
  readonly backfillBatch: number;
  readonly registrySizePollS: number;
  readonly metricsTopN: number;
}

/** Thrown when a quota key has the wrong type; names the key, like the config loader. */
export class QuotaSettingsError extends Error {
  constructor(message: string) {
    super(`invalid quota configuration: ${message}`);
    this.name = 'QuotaSettingsError';
  }
}

const cache = new WeakMap<Config, QuotaSettings>();

/** The quota settings of `config` (parsed once per Config object); throws QuotaSettingsError. */
export function quotaSettings(config: Config): QuotaSettings {
  const cached = cache.get(config);
  if (cached) return cached;
  const parsed = extraKeys.safeParse(config.quay);
  if (!parsed.success) throw new QuotaSettingsError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const extra = parsed.data;
  const q = config.quay;
  const settings: QuotaSettings = {
    enabled: q.FEATURE_QUOTA_MANAGEMENT,
    verify: extra.FEATURE_VERIFY_QUOTA,
    invalidateTotals: extra.QUOTA_INVALIDATE_TOTALS,
    defaultRejectBytes: q.DEFAULT_SYSTEM_REJECT_QUOTA_BYTES ?? 0,
    notifications: extra.FEATURE_QUOTA_NOTIFICATIONS,
    notificationCooldownS: extra.QUOTA_NOTIFICATION_COOLDOWN_SECONDS,
    notificationPollS: extra.QUOTA_NOTIFICATION_WORKER_POLL_PERIOD,
    backfill: q.QUOTA_BACKFILL,
    totalDelayS: q.QUOTA_TOTAL_DELAY_SECONDS,
    backfillPollS: Math.max(1, extra.QUOTA_BACKFILL_POLL_PERIOD),
    backfillBatch: extra.QUOTA_BACKFILL_BATCH_SIZE,
    registrySizePollS: Math.max(1, extra.QUOTA_REGISTRY_SIZE_POLL_PERIOD),
    metricsTopN: extra.QUOTA_METRICS_TOP_N,
  };
  cache.set(config, settings);
  return settings;
}

/** Whether pushes are checked against limits. */
export function enforcing(settings: QuotaSettings): boolean {
  return settings.enabled && settings.verify;
}
