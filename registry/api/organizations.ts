/**
 * Organizations: create, view, settings (time machine), delete (two-step namespace delete), and
 * their robots.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { createOrganizationAccount } from '../../shared/db/accounts.ts';
import { findNamespace, type NamespaceRow } from '../../shared/db/namespaces.ts';
import { isNamespaceAdmin } from '../../shared/db/permissions.ts';
import { withTransaction, type Queryable } from '../../shared/db/pool.ts';
import { subjectOf } from '../auth/grants.ts';
import { apiErrors } from '../errors.ts';
import { createRobotFor, deleteNamespace, updateNamespaceSettings, withAccountErrors } from './accounts.ts';
import { clientIp, parseInput, requireOrganizationAdmin, requireSignedIn, requireUser } from './common.ts';
import { organizationQuotaFields } from './quota-views.ts';

const createBody = z.object({ name: z.string().min(1), email: z.string().email().optional() });
const orgParams = z.object({ org: z.string().min(1) });
const robotParams = orgParams.extend({ shortname: z.string().min(1) });

/** Registers the organization routes. */
export async function registerOrganizationRoutes(app: FastifyInstance): Promise<void> {
  app.post('/organization/', async (request, reply) => {
    const principal = await requireUser(request);
    const body = parseInput(createBody, request.body, 'organization');
    await withAccountErrors(() => withTransaction(app.deps.db, (tx) => createOrganizationAccount(tx, {
      name: body.name, owner: principal.username, email: body.email ?? null, ip: clientIp(request), logs: app.deps.config.quay,
    })));
    return reply.status(201).type('application/json').send('"Created"');
  });

  app.get('/organization/:org', async (request) => {
    const { org } = parseInput(orgParams, request.params);
    const principal = await requireSignedIn(request);
    const organization = await findNamespace(app.deps.db, org);
    if (!organization?.organization) throw apiErrors.notFound();
    const isAdmin = await isNamespaceAdmin(app.deps.db, subjectOf(app.deps, principal), organization.id);
    const isMember = isAdmin || await isTeamMember(app.deps.db, organization.id, principal.id);
    if (!isMember) throw apiErrors.forbidden();
    return { ...(await organizationView(app.deps.db, organization, isAdmin)), ...(await organizationQuotaFields(app.deps, organization.id)) };
  });

  app.put('/organization/:org', async (request) => {
    const { org } = parseInput(orgParams, request.params);
    const { principal, organization } = await requireOrganizationAdmin(request, org);
    await updateNamespaceSettings(request, principal, organization);
    return organizationView(app.deps.db, (await findNamespace(app.deps.db, org))!, true);
  });

  app.delete('/organization/:org', async (request, reply) => {
    const { org } = parseInput(orgParams, request.params);
    const { principal, organization } = await requireOrganizationAdmin(request, org);
    await deleteNamespace(request, principal, organization);
    return reply.status(204).send();
  });

  app.put('/organization/:org/robots/:shortname', async (request, reply) => {
    const { org, shortname } = parseInput(robotParams, request.params);
    const { principal, organization } = await requireOrganizationAdmin(request, org);
    return reply.status(201).send(await createRobotFor(request, principal, organization, shortname));
  });
}

async function isTeamMember(db: Queryable, organizationId: number, userId: number): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM team t JOIN teammember m ON m.team_id = t.id WHERE t.organization_id = $1 AND m.user_id = $2) AS ok`,
    [organizationId, userId]);
  return rows[0]!.ok;
}

/** Quay's organization view; teams and email only for admins. */
async function organizationView(db: Queryable, org: NamespaceRow, isAdmin: boolean): Promise<Record<string, unknown>> {
  const view: Record<string, unknown> = {
    name: org.username, avatar: { name: org.username, hash: '', color: '#000000', kind: 'org' },
    is_admin: isAdmin, is_member: true, is_free_account: true, tag_expiration_s: org.removed_tag_expiration_s,
  };
  if (!isAdmin) return view;
  const { rows } = await db.query<{ name: string; role: string; description: string; member_count: number }>(
    `SELECT t.name, t.role, t.description, (SELECT count(*)::int FROM teammember m WHERE m.team_id = t.id) AS member_count
     FROM team t WHERE t.organization_id = $1 ORDER BY t.name`, [org.id]);
  return {
    ...view, email: org.email,
    teams: Object.fromEntries(rows.map((t) => [t.name, { ...t, can_view: true, is_synced: false }])),
    ordered_teams: rows.map((t) => t.name),
  };
}
