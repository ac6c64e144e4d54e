/**
 * Organization teams and their members (Quay's `/organization/{org}/team/{team}` and
 * `.../members/{member}`). Only organization admins manage them; members are users or the
 * organization's own robots.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { logAction, type LogKind } from '../../shared/db/logs.ts';
import { findNamespace, findRobot, type NamespaceRow } from '../../shared/db/namespaces.ts';
import { TEAM_ROLES } from '../../shared/db/permissions.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { addTeamMember, findTeam, listTeamMembers, removeTeamMember, TEAM_NAME_PATTERN, upsertTeam } from '../../shared/db/teams.ts';
import { apiErrors } from '../errors.ts';
import { clientIp, parseInput, requireOrganizationAdmin } from './common.ts';
import { avatarOf } from './permissions.ts';

const teamParams = z.object({ org: z.string().min(1), team: z.string().regex(TEAM_NAME_PATTERN, 'Invalid team name') });
const memberParams = teamParams.extend({ member: z.string().min(1) });
const teamBody = z.object({ role: z.enum(TEAM_ROLES as ['admin', 'creator', 'member']), description: z.string().max(10_000).optional() });

/** Registers the team routes. */
export async function registerTeamRoutes(app: FastifyInstance): Promise<void> {
  app.put('/organization/:org/team/:team', async (request) => {
    const { org, team } = parseInput(teamParams, request.params);
    const { principal, organization } = await requireOrganizationAdmin(request, org);
    const body = parseInput(teamBody, request.body, 'team');
    const before = await findTeam(app.deps.db, organization.id, team);
    const { team: row } = await withTransaction(app.deps.db, async (tx) => {
      const result = await upsertTeam(tx, { organizationId: organization.id, name: team, role: body.role, description: body.description });
      // Quay's entries: the creation alone, or one per setting that changed (none when nothing did).
      const entries: [LogKind, Record<string, unknown>][] = result.created ? [['org_create_team', { team }]] : [
        ...(body.description !== undefined && before?.description !== body.description ? [['org_set_team_description', { team, description: body.description }] as [LogKind, Record<string, unknown>]] : []),
        ...(before?.role !== body.role ? [['org_set_team_role', { team, role: body.role }] as [LogKind, Record<string, unknown>]] : []),
      ];
      for (const [kind, metadata] of entries) {
        await logAction(tx, app.deps.config.quay, { kind, namespace: { id: organization.id, name: organization.username }, performerId: principal.id, ip: clientIp(request), metadata });
      }
      return result;
    });
    const members = await listTeamMembers(app.deps.db, row.id);
    return { name: row.name, description: row.description, role: row.role, avatar: avatarOf(row.name, 'team'), can_view: true, member_count: members.length, is_synced: false };
  });

  app.put('/organization/:org/team/:team/members/:member', async (request) => {
    const { org, team, member } = parseInput(memberParams, request.params);
    const { principal, organization } = await requireOrganizationAdmin(request, org);
    const teamRow = await findTeam(app.deps.db, organization.id, team);
    if (!teamRow) throw apiErrors.notFound(`Unknown team ${team}`);
    const account = await memberFor(request, organization, member);
    await withTransaction(app.deps.db, async (tx) => {
      if (!await addTeamMember(tx, teamRow.id, account.id)) return;
      await logAction(tx, app.deps.config.quay, { kind: 'org_add_team_member', namespace: { id: organization.id, name: organization.username }, performerId: principal.id, ip: clientIp(request), metadata: { member, team } });
    });
    return { name: account.username, kind: 'user', is_robot: account.robot, avatar: avatarOf(account.username), invited: false };
  });

  app.delete('/organization/:org/team/:team/members/:member', async (request, reply) => {
    const { org, team, member } = parseInput(memberParams, request.params);
    const { principal, organization } = await requireOrganizationAdmin(request, org);
    const teamRow = await findTeam(app.deps.db, organization.id, team);
    if (!teamRow) throw apiErrors.notFound(`Unknown team ${team}`);
    const account = await memberFor(request, organization, member);
    await withTransaction(app.deps.db, async (tx) => {
      if (!await removeTeamMember(tx, teamRow.id, account.id)) throw apiErrors.notFound(`${member} is not a member of ${team}`);
      await logAction(tx, app.deps.config.quay, { kind: 'org_remove_team_member', namespace: { id: organization.id, name: organization.username }, performerId: principal.id, ip: clientIp(request), metadata: { member, team } });
    });
    return reply.status(204).send();
  });
}

/** A user, or a robot of the organization itself (Quay refuses robots of other namespaces). */
async function memberFor(request: FastifyRequest, organization: NamespaceRow, member: string): Promise<NamespaceRow> {
  const db = request.server.deps.db;
  if (member.includes('+')) {
    if (!member.startsWith(`${organization.username}+`)) throw apiErrors.badRequest(`Cannot add robot ${member} to a team of ${organization.username}`);
    const robot = await findRobot(db, member);
    if (!robot) throw apiErrors.notFound(`Unknown robot ${member}`);
    return robot;
  }
  const user = await findNamespace(db, member);
  if (!user || user.organization || user.robot) throw apiErrors.notFound(`Unknown user ${member}`);
  return user;
}
