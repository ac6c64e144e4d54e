/**
 * What the quota routes do once the caller is allowed and the namespace known: list, create,
 * change and delete a namespace's quota and its limits, with Quay's messages and statuses. Every
 * change re-checks the namespace's quota notifications at once (Quay's retroactive notification).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { NamespaceRow } from '../../shared/db/namespaces.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { reconcileQuotaNotifications } from '../../shared/db/quota/checks.ts';
import {
  createNamespaceQuota, createQuotaLimit, deleteNamespaceQuota, deleteQuotaLimit, findLimit, findQuotaById, updateQuotaLimit, updateQuotaSize,
} from '../../shared/db/quota/definitions.ts';
import { findNamespaceQuota, type NamespaceQuota, type QuotaLimit } from '../../shared/db/quota/limits.ts';
import { quotaSettings } from '../../shared/db/quota/settings.ts';
import { apiErrors } from '../errors.ts';
import { bodyObject, limitBytesOf, pathOf, quotaTypeOf, thresholdOf } from './quota-input.ts';
import { limitView, quotaListView, quotaView } from './quota-views.ts';

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
  const outcome = await createNamespaceQuota(request.server.deps.db, namespace.id, limitBytes);
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
  if (body.limit_bytes !== undefined) await updateQuotaSize(request.server.deps.db, quota.id, limitBytesOf(request, body));
  await recheck(request, namespace.id);
  return quotaView((await findNamespaceQuota(request.server.deps.db, namespace.id))!, settingsOf(request));
}

/** DELETE .../quota/{id}: 204; the system default applies from now on (GAP-9). */
export async function removeQuota(request: FastifyRequest, reply: FastifyReply, namespace: NamespaceRow): Promise<FastifyReply> {
  const quota = await quotaOfPath(request, namespace);
  await withTransaction(request.server.deps.db, (tx) => deleteNamespaceQuota(tx, quota));
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
  const outcome = await createQuotaLimit(request.server.deps.db, quota, type, percent);
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
  await withTransaction(request.server.deps.db, (tx) => updateQuotaLimit(tx, quota, limit, change));
  await recheck(request, namespace.id);
  return quotaView((await findNamespaceQuota(request.server.deps.db, namespace.id))!, settingsOf(request));
}

/** DELETE .../quota/{id}/limit/{limit_id}: 204. */
export async function removeLimit(request: FastifyRequest, reply: FastifyReply, namespace: NamespaceRow): Promise<FastifyReply> {
  const { quota, limit } = await limitOfPath(request, namespace);
  await withTransaction(request.server.deps.db, (tx) => deleteQuotaLimit(tx, quota, limit));
  await recheck(request, namespace.id);
  return reply.status(204).send();
}
