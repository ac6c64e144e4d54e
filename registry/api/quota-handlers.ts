/**
 * What the quota routes do once the caller is allowed and the namespace known: list, create,
 * change and delete a namespace's quota and its limits, with Quay's messages and statuses. Every
 * change re-checks the namespace's quota notifications at once (Quay's retroactive notification).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { logAction, type LogKind } from '../../shared/db/logs.ts';
import type { NamespaceRow } from '../../shared/db/namespaces.ts';
import type { Queryable } from '../../shared/db/pool.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { reconcileQuotaNotifications } from '../../shared/db/quota/checks.ts';
import {
  createNamespaceQuota, createQuotaLimit, deleteNamespaceQuota, deleteQuotaLimit, findLimit, findQuotaById, updateQuotaLimit, updateQuotaSize,
} from '../../shared/db/quota/definitions.ts';
import { findNamespaceQuota, type NamespaceQuota, type QuotaLimit } from '../../shared/db/quota/limits.ts';
import { quotaSettings } from '../../shared/db/quota/settings.ts';
import { apiErrors } from '../errors.ts';
import { apiPrincipalOf, clientIp } from './common.ts';
import { bodyObject, limitBytesOf, pathOf, quotaTypeOf, thresholdOf } from './quota-input.ts';
import { limitView, quotaListView, quotaView } from './quota-views.ts';

// Quay's quota audit logs (PROJQUAY-9859): org_{create,change,delete}_quota[_limit], metadata
// with the namespace, the values and, on a change, the previous ones.
async function quotaLog(request: FastifyRequest, tx: Queryable, namespace: NamespaceRow, kind: LogKind, metadata: Record<string, unknown>): Promise<void> {
  const principal = await apiPrincipalOf(request);
  await logAction(tx, request.server.deps.config.quay, {
    kind, namespace: { id: namespace.id, name: namespace.username }, performerId: principal.id ?? null, ip: clientIp(request),
    metadata: { namespace: namespace.username, ...metadata },
  });
}

/** A byte count as a JSON number when it is exact as one, else as its decimal string. */
function exactBytes(bytes: string | number): string | number {
  return Number.isSafeInteger(Number(bytes)) ? Number(bytes) : String(bytes);
}

/** Bytes as Quay's audit metadata shows them beside the number ("1.0 GiB"). */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

function settingsOf(request: FastifyRequest) {
  return quotaSettings(request.server.deps.config);
}

// After a change of sizes or thresholds, notify what is now reached and re-arm what is not.
async function recheck(request: FastifyRequest, namespaceId: number): Promise<void> {
  const { db } = request.server.deps;
  await withTransaction(db, (tx) => reconcileQuotaNotifications(tx, namespaceId, settingsOf(request)));
  request.server.deps.onOutboxWrite?.();
}

/** GET .../quota: the namespace's quota (or the system default) as Quay lists it. */
export async function listQuotas(request: FastifyRequest, namespace: NamespaceRow): Promise<Record<string, unknown>[]> {
  return quotaListView(await findNamespaceQuota(request.server.deps.db, namespace.id), settingsOf(request));
}

/** POST .../quota: 201 "Created"; 400 `existsMessage` when the namespace has one (Quay allows one). */
export async function createQuota(request: FastifyRequest, reply: FastifyReply, namespace: NamespaceRow, existsMessage: string): Promise<FastifyReply> {
  const limitBytes = limitBytesOf(request, bodyObject(request));
  const outcome = await withTransaction(request.server.deps.db, async (tx) => {
    const created = await createNamespaceQuota(tx, namespace.id, limitBytes);
    if (created === 'created') await quotaLog(request, tx, namespace, 'org_create_quota', { limit_bytes: exactBytes(limitBytes), limit: humanBytes(Number(limitBytes)) });
    return created;
  });
  if (outcome === 'exists') throw apiErrors.badRequest(existsMessage);
  await recheck(request, namespace.id);
  return reply.status(201).type('application/json').send('"Created"');
}

/** The quota named by the path, or 404. */
export async function quotaOfPath(request: FastifyRequest, namespace: NamespaceRow): Promise<NamespaceQuota> {
  const { quota_id: quotaId } = pathOf(request);
  const quota = quotaId === undefined ? undefined : await findQuotaById(request.server.deps.db, namespace.id, quotaId);
  if (!quota) throw apiErrors.notFound();
  return quota;
}

/** GET .../quota/{id}. */
export async function getQuota(request: FastifyRequest, namespace: NamespaceRow): Promise<Record<string, unknown>> {
  return quotaView(await quotaOfPath(request, namespace), settingsOf(request));
}

/** PUT .../quota/{id} `{limit_bytes}`: the changed quota. */
export async function changeQuota(request: FastifyRequest, namespace: NamespaceRow): Promise<Record<string, unknown>> {
  const quota = await quotaOfPath(request, namespace);
  const body = bodyObject(request);
  if (body.limit_bytes !== undefined) {
    const limitBytes = limitBytesOf(request, body);
    await withTransaction(request.server.deps.db, async (tx) => {
      await updateQuotaSize(tx, quota.id, limitBytes);
      await quotaLog(request, tx, namespace, 'org_change_quota', {
        quota_id: quota.id, limit_bytes: exactBytes(limitBytes), limit: humanBytes(Number(limitBytes)), previous_limit_bytes: quota.limitBytes,
      });
    });
  }
  await recheck(request, namespace.id);
  return quotaView((await findNamespaceQuota(request.server.deps.db, namespace.id))!, settingsOf(request));
}

/** DELETE .../quota/{id}: 204; the system default applies from now on (GAP-9). */
export async function removeQuota(request: FastifyRequest, reply: FastifyReply, namespace: NamespaceRow): Promise<FastifyReply> {
  const quota = await quotaOfPath(request, namespace);
  await withTransaction(request.server.deps.db, async (tx) => {
    await deleteNamespaceQuota(tx, quota);
    await quotaLog(request, tx, namespace, 'org_delete_quota', { quota_id: quota.id, limit_bytes: quota.limitBytes, limit: humanBytes(quota.limitBytes) });
  });
  await recheck(request, namespace.id);
  return reply.status(204).send();
}

/** GET .../quota/{id}/limit. */
export async function listLimits(request: FastifyRequest, namespace: NamespaceRow): Promise<Record<string, unknown>[]> {
  return (await quotaOfPath(request, namespace)).limits.map(limitView);
}

async function limitOfPath(request: FastifyRequest, namespace: NamespaceRow): Promise<{ quota: NamespaceQuota; limit: QuotaLimit }> {
  const quota = await quotaOfPath(request, namespace);
  const { limit_id: limitId } = pathOf(request);
  const limit = limitId === undefined ? undefined : findLimit(quota, limitId);
  if (!limit) throw apiErrors.notFound();
  return { quota, limit };
}

/** GET .../quota/{id}/limit/{limit_id}. */
export async function getLimit(request: FastifyRequest, namespace: NamespaceRow): Promise<Record<string, unknown>> {
  return limitView((await limitOfPath(request, namespace)).limit);
}

/** POST .../quota/{id}/limit `{type, threshold_percent}`: 201 "Created". */
export async function createLimit(request: FastifyRequest, reply: FastifyReply, namespace: NamespaceRow): Promise<FastifyReply> {
  const quota = await quotaOfPath(request, namespace);
  const body = bodyObject(request);
  const type = quotaTypeOf(body.type);
  const percent = thresholdOf(body.threshold_percent);
  const outcome = await withTransaction(request.server.deps.db, async (tx) => {
    const created = await createQuotaLimit(tx, quota, type, percent);
    if (created === 'created') await quotaLog(request, tx, namespace, 'org_create_quota_limit', { quota_id: quota.id, type, threshold_percent: percent });
    return created;
  });
  if (outcome === 'duplicate') throw apiErrors.badRequest('Quota limit already exists');
  if (outcome === 'reject_exists') throw apiErrors.badRequest("Only one quota limit of type 'Reject' allowed.");
  await recheck(request, namespace.id);
  return reply.status(201).type('application/json').send('"Created"');
}

/** PUT .../quota/{id}/limit/{limit_id} `{type?, threshold_percent?}`: the quota, as Quay answers. */
export async function changeLimit(request: FastifyRequest, namespace: NamespaceRow): Promise<Record<string, unknown>> {
  const { quota, limit } = await limitOfPath(request, namespace);
  const body = bodyObject(request);
  const change = {
    ...(body.type !== undefined ? { type: quotaTypeOf(body.type) } : {}),
    ...(body.threshold_percent !== undefined ? { percent: thresholdOf(body.threshold_percent) } : {}),
  };
  if (change.type === 'Reject' && quota.limits.some((l) => l.type === 'Reject' && l.id !== limit.id)) {
    throw apiErrors.badRequest("Only one quota limit of type 'Reject' allowed.");
  }
  await withTransaction(request.server.deps.db, async (tx) => {
    await updateQuotaLimit(tx, quota, limit, change);
    await quotaLog(request, tx, namespace, 'org_change_quota_limit', {
      quota_id: quota.id, limit_id: limit.id, type: change.type ?? limit.type, threshold_percent: change.percent ?? limit.percent,
      previous_type: limit.type, previous_threshold_percent: limit.percent,
    });
  });
  await recheck(request, namespace.id);
  return quotaView((await findNamespaceQuota(request.server.deps.db, namespace.id))!, settingsOf(request));
}

/** DELETE .../quota/{id}/limit/{limit_id}: 204. */
export async function removeLimit(request: FastifyRequest, reply: FastifyReply, namespace: NamespaceRow): Promise<FastifyReply> {
  const { quota, limit } = await limitOfPath(request, namespace);
  await withTransaction(request.server.deps.db, async (tx) => {
    await deleteQuotaLimit(tx, quota, limit);
    await quotaLog(request, tx, namespace, 'org_delete_quota_limit', { quota_id: quota.id, limit_id: limit.id, type: limit.type, threshold_percent: limit.percent });
  });
  await recheck(request, namespace.id);
  return reply.status(204).send();
}
