/**
 * Configuring quotas (Quay's data/model/namespacequota.py): one quota per namespace
 * (`userorganizationquota`) and its Warning/Reject limits (`quotalimits`). Validation of the
 * values is the caller's (the API answers Quay's messages); this module keeps the rows and the
 * notification state consistent: removing a limit or a quota forgets its notification claims.
 */
import type { Queryable } from '../pool.ts';
import { findNamespaceQuota, type NamespaceQuota, type QuotaLimit, type QuotaType } from './limits.ts';
import { forgetThresholds } from './notifications.ts';

/** A byte count as exact decimal digits (bigint range), or a safe integer. */
export type ByteCount = string | number;

/** The quota `quotaId` of namespace `namespaceId`, or undefined (also for a quota of another namespace). */
export async function findQuotaById(db: Queryable, namespaceId: number, quotaId: number): Promise<NamespaceQuota | undefined> {
  const quota = await findNamespaceQuota(db, namespaceId);
  return quota?.id === quotaId ? quota : undefined;
}

/** Creates the namespace's quota; `exists` when it has one already (Quay allows one). */
export async function createNamespaceQuota(db: Queryable, namespaceId: number, limitBytes: ByteCount): Promise<'created' | 'exists'> {
  const result = await db.query(
    `INSERT INTO userorganizationquota (namespace_id, limit_bytes) VALUES ($1, $2::bigint) ON CONFLICT (namespace_id) DO NOTHING`,
    [namespaceId, String(limitBytes)]);
  return (result.rowCount ?? 0) > 0 ? 'created' : 'exists';
}

/** Changes quota `quotaId`'s size. */
export async function updateQuotaSize(db: Queryable, quotaId: number, limitBytes: ByteCount): Promise<void> {
  await db.query(`UPDATE userorganizationquota SET limit_bytes = $2::bigint WHERE id = $1`, [quotaId, String(limitBytes)]);
}

/** Deletes `quota` with its limits and the namespace's notification state (the system default may apply next). */
export async function deleteNamespaceQuota(tx: Queryable, quota: NamespaceQuota): Promise<void> {
  await tx.query(`DELETE FROM userorganizationquota WHERE id = $1`, [quota.id]);
  await forgetThresholds(tx, quota.namespaceId);
}

/** Why a new limit was refused. */
export type LimitConflict = 'duplicate' | 'reject_exists';

/**
 * Adds a `type` limit at `percent` % to `quota`; refuses a duplicate (same type and percent) and
 * a second Reject limit (Quay's message says one Reject is allowed).
 */
export async function createQuotaLimit(db: Queryable, quota: NamespaceQuota, type: QuotaType, percent: number): Promise<'created' | LimitConflict> {
  if (quota.limits.some((l) => l.type === type && l.percent === percent)) return 'duplicate';
  if (type === 'Reject' && quota.limits.some((l) => l.type === 'Reject')) return 'reject_exists';
  await db.query(
    `INSERT INTO quotalimits (quota_id, quota_type_id, percent_of_limit) SELECT $1, id, $3 FROM quotatype WHERE name = $2`,
    [quota.id, type, percent]);
  return 'created';
}

/** The limit `limitId` of `quota`, or undefined. */
export function findLimit(quota: NamespaceQuota, limitId: number): QuotaLimit | undefined {
  return quota.limits.find((l) => l.id === limitId);
}

/** Changes a limit's type and/or percent; a changed percent forgets the old threshold's notification state. */
export async function updateQuotaLimit(
  tx: Queryable, quota: NamespaceQuota, limit: QuotaLimit, change: { type?: QuotaType; percent?: number },
): Promise<void> {
  await tx.query(
    `UPDATE quotalimits SET quota_type_id = COALESCE((SELECT id FROM quotatype WHERE name = $2), quota_type_id),
                            percent_of_limit = COALESCE($3, percent_of_limit)
     WHERE id = $1`, [limit.id, change.type ?? null, change.percent ?? null]);
  if (change.percent !== undefined && change.percent !== limit.percent) await forgetThresholds(tx, quota.namespaceId, [limit.percent]);
}

/** Deletes a limit and its threshold's notification state. */
export async function deleteQuotaLimit(tx: Queryable, quota: NamespaceQuota, limit: QuotaLimit): Promise<void> {
  await tx.query(`DELETE FROM quotalimits WHERE id = $1`, [limit.id]);
  await forgetThresholds(tx, quota.namespaceId, [limit.percent]);
}
