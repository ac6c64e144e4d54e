/**
 * A namespace's quota and limits as enforcement sees them (Quay's `check_limits`, reference §3.4):
 * each limit allows `floor(limit_bytes * percent / 100)` bytes; a namespace without a quota has
 * one Reject limit of DEFAULT_SYSTEM_REJECT_QUOTA_BYTES at 100 % when that is set (GAP-9: the
 * system default is the fallback, a namespace's own quota wins).
 */
import type { Queryable } from '../pool.ts';
import type { QuotaSettings } from './settings.ts';

/** Quay's quota types (`quotatype.name`). */
export const QUOTA_TYPES = ['Warning', 'Reject'] as const;
export type QuotaType = (typeof QUOTA_TYPES)[number];

/** One limit of a quota. */
export interface QuotaLimit {
  readonly id: number;
  readonly type: QuotaType;
  readonly percent: number;
}

/** A namespace's configured quota (`userorganizationquota`) with its limits. */
export interface NamespaceQuota {
  readonly id: number;
  readonly namespaceId: number;
  readonly limitBytes: number;
  readonly limits: readonly QuotaLimit[];
}

/** A threshold in bytes; `limitId` is undefined for the system default. */
export interface Threshold {
  readonly type: QuotaType;
  readonly percent: number;
  readonly allowedBytes: number;
  readonly limitId: number | undefined;
}

/** What applies to a namespace: the quota's size (configured or default) and its thresholds. */
export interface EffectiveLimits {
  /** The namespace's quota in bytes; 0 when neither a quota nor a system default exists. */
  readonly quotaBytes: number;
  readonly fromDefault: boolean;
  readonly thresholds: readonly Threshold[];
}

/** Quay's check_limits for a usage: the crossed threshold with the most bytes allowed, if any. */
export interface LimitCheck {
  readonly severity: QuotaType | undefined;
  readonly threshold: Threshold | undefined;
  /** Whether some Reject threshold is reached: the push is refused. */
  readonly rejected: boolean;
}

/** Bytes a limit of `percent` % allows of `limitBytes`. */
export function allowedBytes(limitBytes: number, percent: number): number {
  return Math.floor((limitBytes * percent) / 100);
}

/** The limits that apply to a namespace with `quota` (undefined: none configured) under `settings`. */
export function effectiveLimits(quota: NamespaceQuota | undefined, settings: QuotaSettings): EffectiveLimits {
  if (quota) {
    return {
      quotaBytes: quota.limitBytes, fromDefault: false,
      thresholds: quota.limits.map((l) => ({ type: l.type, percent: l.percent, allowedBytes: allowedBytes(quota.limitBytes, l.percent), limitId: l.id })),
    };
  }
  if (settings.defaultRejectBytes <= 0) return { quotaBytes: 0, fromDefault: false, thresholds: [] };
  return {
    quotaBytes: settings.defaultRejectBytes, fromDefault: true,
    thresholds: [{ type: 'Reject', percent: 100, allowedBytes: settings.defaultRejectBytes, limitId: undefined }],
  };
}

/**
 * Checks `usageBytes` against `limits`. Severity follows Quay (the crossed threshold allowing the
 * most bytes wins, so a Warning at 100 % outranks a Reject at 90 %); refusal does not: any
 * reached Reject threshold refuses, so usage never passes a Reject limit whatever else is set.
 */
export function checkLimits(limits: EffectiveLimits, usageBytes: number): LimitCheck {
  let threshold: Threshold | undefined;
  let rejected = false;
  for (const candidate of limits.thresholds) {
    if (usageBytes < candidate.allowedBytes) continue;
    if (candidate.type === 'Reject') rejected = true;
    if (!threshold || candidate.allowedBytes > threshold.allowedBytes) threshold = candidate;
  }
  return { severity: threshold?.type, threshold, rejected };
}

interface QuotaRow {
  id: number;
  namespace_id: number;
  limit_bytes: number;
  limits: { id: number; type: QuotaType; percent: number }[];
}

/** SQL of one namespace's quota as JSON (null without one), for statements that read it along. */
export function quotaJsonSql(namespaceParam: string): string {
  return `(SELECT json_build_object('id', q.id, 'namespace_id', q.namespace_id, 'limit_bytes', q.limit_bytes, 'limits',
            COALESCE((SELECT json_agg(json_build_object('id', l.id, 'type', t.name, 'percent', l.percent_of_limit) ORDER BY l.percent_of_limit, l.id)
                      FROM quotalimits l JOIN quotatype t ON t.id = l.quota_type_id WHERE l.quota_id = q.id), '[]'::json))
           FROM userorganizationquota q WHERE q.namespace_id = ${namespaceParam})`;
}

/** The quota a `quotaJsonSql` column holds, or undefined. */
export function quotaFromJson(json: unknown): NamespaceQuota | undefined {
  return json ? toQuota(json as QuotaRow) : undefined;
}

/** SQL (one row per quota) shared by the readers below; `$1` filters. */
const QUOTA_SELECT = `
  SELECT q.id, q.namespace_id, q.limit_bytes,
         COALESCE((SELECT json_agg(json_build_object('id', l.id, 'type', t.name, 'percent', l.percent_of_limit) ORDER BY l.percent_of_limit, l.id)
                   FROM quotalimits l JOIN quotatype t ON t.id = l.quota_type_id WHERE l.quota_id = q.id), '[]'::json) AS limits
  FROM userorganizationquota q`;

function toQuota(row: QuotaRow): NamespaceQuota {
  return { id: row.id, namespaceId: row.namespace_id, limitBytes: row.limit_bytes, limits: row.limits };
}

/** The quota of namespace `namespaceId` (Quay allows one), or undefined. */
export async function findNamespaceQuota(db: Queryable, namespaceId: number): Promise<NamespaceQuota | undefined> {
  const { rows } = await db.query<QuotaRow>(`${QUOTA_SELECT} WHERE q.namespace_id = $1`, [namespaceId]);
  return rows[0] && toQuota(rows[0]);
}

/** The quotas of several namespaces, by namespace id. */
export async function findNamespaceQuotas(db: Queryable, namespaceIds: readonly number[]): Promise<Map<number, NamespaceQuota>> {
  if (namespaceIds.length === 0) return new Map();
  const { rows } = await db.query<QuotaRow>(`${QUOTA_SELECT} WHERE q.namespace_id = ANY($1::bigint[])`, [[...new Set(namespaceIds)]]);
  return new Map(rows.map((row) => [row.namespace_id, toQuota(row)]));
}
