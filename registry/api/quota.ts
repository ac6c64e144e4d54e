/**
 * Quay's quota API (endpoints/api/namespacequota.py, superuser.py), only when
 * FEATURE_QUOTA_MANAGEMENT is on (else every path is 404, Quay's show_if):
 * - `/organization/{org}/quota[/{id}[/limit[/{limit_id}]]]`: members read; writes need a
 *   superuser (QUOTA-20), except that creating (a quota or a limit) is also allowed to the
 *   organization's admins when DEFAULT_SYSTEM_REJECT_QUOTA_BYTES is explicitly 0, as in Quay;
 * - `/user/quota[/{id}[/limit[/{limit_id}]]]`: the signed-in user reads their own (user quotas
 *   are set by superusers only, QUOTA-20);
 * - `/superuser/users/{namespace}/quota[/{id}]` and `/superuser/organization/{namespace}/quota[/{id}]`:
 *   GET, POST, PUT, DELETE for superusers;
 * - `/superuser/registrysize/` (quota-registry-size.ts).
 * 401 for anonymous callers, 403 "Unauthorized" for callers without the right, then 404.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { findNamespace, type NamespaceRow } from '../../shared/db/namespaces.ts';
import { isNamespaceAdmin } from '../../shared/db/permissions.ts';
import { quotaSettings } from '../../shared/db/quota/settings.ts';
import { subjectOf } from '../auth/grants.ts';
import { apiErrors } from '../errors.ts';
import { requireSignedIn, requireUser } from './common.ts';
import {
  changeLimit, changeQuota, createLimit, createQuota, getLimit, getQuota, listLimits, listQuotas, removeLimit, removeQuota,
} from './quota-handlers.ts';
import { installExactJsonParser, pathOf } from './quota-input.ts';
import { registerRegistrySizeRoutes } from './quota-registry-size.ts';

/** Registers the quota routes inside the /api/v1 scope. */
export async function registerQuotaRoutes(app: FastifyInstance): Promise<void> {
  if (!quotaSettings(app.deps.config).enabled) return;
  installExactJsonParser(app);
  registerOrganizationRoutes(app);
  registerUserRoutes(app);
  registerSuperuserRoutes(app);
  registerRegistrySizeRoutes(app);
}

function registerOrganizationRoutes(app: FastifyInstance): void {
  const base = '/organization/:org/quota';
  app.get(base, async (request) => listQuotas(request, await organizationFor(request, 'read')));
  app.post(base, async (request, reply) => {
    const org = await organizationFor(request, 'create');
    return createQuota(request, reply, org, `Organization quota for '${org.username}' already exists`);
  });
  app.get(`${base}/:quota_id`, async (request) => getQuota(request, await organizationFor(request, 'read')));
  app.put(`${base}/:quota_id`, async (request) => changeQuota(request, await organizationFor(request, 'write')));
  app.delete(`${base}/:quota_id`, async (request, reply) => removeQuota(request, reply, await organizationFor(request, 'write')));
  app.get(`${base}/:quota_id/limit`, async (request) => listLimits(request, await organizationFor(request, 'read')));
  app.post(`${base}/:quota_id/limit`, async (request, reply) => createLimit(request, reply, await organizationFor(request, 'create')));
  app.get(`${base}/:quota_id/limit/:limit_id`, async (request) => getLimit(request, await organizationFor(request, 'read')));
  app.put(`${base}/:quota_id/limit/:limit_id`, async (request) => changeLimit(request, await organizationFor(request, 'write')));
  app.delete(`${base}/:quota_id/limit/:limit_id`, async (request, reply) => removeLimit(request, reply, await organizationFor(request, 'write')));
}

function registerUserRoutes(app: FastifyInstance): void {
  app.get('/user/quota', async (request) => listQuotas(request, await ownNamespace(request)));
  app.get('/user/quota/:quota_id', async (request) => getQuota(request, await ownNamespace(request)));
  app.get('/user/quota/:quota_id/limit', async (request) => listLimits(request, await ownNamespace(request)));
  app.get('/user/quota/:quota_id/limit/:limit_id', async (request) => getLimit(request, await ownNamespace(request)));
}

function registerSuperuserRoutes(app: FastifyInstance): void {
  for (const kind of ['users', 'organization']) {
    const base = `/superuser/${kind}/:namespace/quota`;
    app.get(base, async (request) => listQuotas(request, await namespaceForSuperuser(request)));
    app.post(base, async (request, reply) => {
      const namespace = await namespaceForSuperuser(request);
      return createQuota(request, reply, namespace, `Quota for '${namespace.username}' already exists`);
    });
    app.put(`${base}/:quota_id`, async (request) => changeQuota(request, await namespaceForSuperuser(request)));
    app.delete(`${base}/:quota_id`, async (request, reply) => removeQuota(request, reply, await namespaceForSuperuser(request)));
  }
}

/**
 * The organization of the path, for `read` (members and superusers), `create` (superusers, or
 * admins when DEFAULT_SYSTEM_REJECT_QUOTA_BYTES is 0) or `write` (superusers). Only those allowed
 * learn whether it exists.
 */
async function organizationFor(request: FastifyRequest, access: 'read' | 'create' | 'write'): Promise<NamespaceRow> {
  const principal = await requireSignedIn(request);
  const { deps } = request.server;
  const found = await findNamespace(deps.db, pathOf(request).org ?? '');
  const org = found?.organization ? found : undefined;
  if (principal.superuser) {
    if (!org) throw apiErrors.notFound();
    return org;
  }
  const subject = subjectOf(deps, principal);
  if (org && access === 'read' && (await isNamespaceAdmin(deps.db, subject, org.id) || await isTeamMember(request, org.id, principal.id))) return org;
  const adminMayCreate = access === 'create' && deps.config.quay.DEFAULT_SYSTEM_REJECT_QUOTA_BYTES === 0;
  if (org && adminMayCreate && await isNamespaceAdmin(deps.db, subject, org.id)) return org;
  throw apiErrors.forbidden();
}

async function isTeamMember(request: FastifyRequest, organizationId: number, userId: number): Promise<boolean> {
  const { rows } = await request.server.deps.db.query<{ ok: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM team t JOIN teammember m ON m.team_id = t.id WHERE t.organization_id = $1 AND m.user_id = $2) AS ok`,
    [organizationId, userId]);
  return rows[0]!.ok;
}

async function ownNamespace(request: FastifyRequest): Promise<NamespaceRow> {
  const principal = await requireUser(request);
  const user = await findNamespace(request.server.deps.db, principal.username);
  if (!user) throw apiErrors.unauthorized('Requires authentication');
  return user;
}

async function namespaceForSuperuser(request: FastifyRequest): Promise<NamespaceRow> {
  const principal = await requireUser(request);
  if (!principal.superuser) throw apiErrors.forbidden();
  const namespace = await findNamespace(request.server.deps.db, pathOf(request).namespace ?? '');
  if (!namespace || namespace.robot) throw apiErrors.notFound();
  return namespace;
}
