/**
 * Explicit repository permissions for users, robots and teams (Quay's
 * `/repository/{repo}/permissions/{user,team}/{name}`). Only repository admins manage them.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { logAction, type ActionLog, type LogKind } from '../../shared/db/logs.ts';
import { findNamespace, findRobot, type NamespaceRow } from '../../shared/db/namespaces.ts';
import {
  deleteTeamRepositoryPermission, deleteUserRepositoryPermission, REPOSITORY_ROLES, setTeamRepositoryPermission, setUserRepositoryPermission,
} from '../../shared/db/permissions.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import type { RepositoryRow } from '../../shared/db/repositories.ts';
import { findTeam } from '../../shared/db/teams.ts';
import type { Principal } from '../auth/access.ts';
import { apiErrors } from '../errors.ts';
import { clientIp, parseInput, repositoryParams, requireRepositoryRole } from './common.ts';

const roleBody = z.object({ role: z.enum(REPOSITORY_ROLES as ['read', 'write', 'admin']) });
const userParams = repositoryParams.extend({ username: z.string().min(1) });
const teamParams = repositoryParams.extend({ team: z.string().min(1) });

/** Registers the repository permission routes. */
export async function registerPermissionRoutes(app: FastifyInstance): Promise<void> {
  const base = '/repository/:namespace/:repository/permissions';

  app.put(`${base}/user/:username`, async (request) => {
    const { namespace, repository, username } = parseInput(userParams, request.params);
    const { principal, repository: repo } = await requireRepositoryRole(request, namespace, repository, 'admin');
    const { role } = parseInput(roleBody, request.body, 'permission');
    const grantee = await userOrRobotFor(request, repo, username);
    await withTransaction(app.deps.db, async (tx) => {
      await setUserRepositoryPermission(tx, repo.id, grantee.id, role);
      await logAction(tx, app.deps.config.quay, logOf(request, principal, repo, 'change_repo_permission', { username, role }));
    });
    return { role, name: grantee.username, is_robot: grantee.robot, avatar: avatarOf(grantee.username), is_org_member: false };
  });

  app.delete(`${base}/user/:username`, async (request, reply) => {
    const { namespace, repository, username } = parseInput(userParams, request.params);
    const { principal, repository: repo } = await requireRepositoryRole(request, namespace, repository, 'admin');
    const grantee = await userOrRobotFor(request, repo, username);
    await withTransaction(app.deps.db, async (tx) => {
      if (!await deleteUserRepositoryPermission(tx, repo.id, grantee.id)) throw apiErrors.badRequest('User does not have permission for repo.');
      await logAction(tx, app.deps.config.quay, logOf(request, principal, repo, 'delete_repo_permission', { username }));
    });
    return reply.status(204).send();
  });

  app.put(`${base}/team/:team`, async (request) => {
    const { namespace, repository, team } = parseInput(teamParams, request.params);
    const { principal, repository: repo } = await requireRepositoryRole(request, namespace, repository, 'admin');
    const { role } = parseInput(roleBody, request.body, 'permission');
    const teamRow = await teamFor(request, repo, team);
    await withTransaction(app.deps.db, async (tx) => {
      await setTeamRepositoryPermission(tx, repo.id, teamRow.id, role);
      await logAction(tx, app.deps.config.quay, logOf(request, principal, repo, 'change_repo_permission', { team, role }));
    });
    return { role, name: team, avatar: avatarOf(team) };
  });

  app.delete(`${base}/team/:team`, async (request, reply) => {
    const { namespace, repository, team } = parseInput(teamParams, request.params);
    const { principal, repository: repo } = await requireRepositoryRole(request, namespace, repository, 'admin');
    const teamRow = await teamFor(request, repo, team);
    await withTransaction(app.deps.db, async (tx) => {
      if (!await deleteTeamRepositoryPermission(tx, repo.id, teamRow.id)) throw apiErrors.badRequest('Team does not have permission for repo.');
      await logAction(tx, app.deps.config.quay, logOf(request, principal, repo, 'delete_repo_permission', { team }));
    });
    return reply.status(204).send();
  });
}

/** A user, or a robot of the repository's own namespace (Quay refuses robots from elsewhere). */
async function userOrRobotFor(request: FastifyRequest, repo: RepositoryRow, username: string): Promise<NamespaceRow> {
  const db = request.server.deps.db;
  if (username.includes('+')) {
    if (!username.startsWith(`${repo.namespace}+`)) throw apiErrors.badRequest(`Cannot add robot ${username} under namespace ${repo.namespace}`);
    const robot = await findRobot(db, username);
    if (!robot) throw apiErrors.notFound(`Unknown robot ${username}`);
    return robot;
  }
  const user = await findNamespace(db, username);
  if (!user || user.organization || user.robot) throw apiErrors.notFound(`Unknown user ${username}`);
  return user;
}

async function teamFor(request: FastifyRequest, repo: RepositoryRow, team: string): Promise<{ id: number }> {
  const row = await findTeam(request.server.deps.db, repo.namespace_user_id, team);
  if (!row) throw apiErrors.notFound(`Unknown team ${team}`);
  return row;
}

function logOf(request: FastifyRequest, principal: Principal, repo: RepositoryRow, kind: LogKind, extra: Record<string, unknown>): ActionLog {
  return {
    kind, namespace: { id: repo.namespace_user_id, name: repo.namespace }, performerId: principal.id ?? null, repositoryId: repo.id, ip: clientIp(request),
    metadata: { repo: repo.name, namespace: repo.namespace, ...extra },
  };
}

/** Quay's avatar block, reduced to what clients read (name and kind). */
export function avatarOf(name: string, kind = 'user'): Record<string, string> {
  return { name, hash: '', color: '#000000', kind };
}
