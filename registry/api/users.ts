/**
 * The signed-in user (`/user/`: view, settings, delete, robots, app tokens) and the superuser's
 * user management (`/superuser/users/`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { createUserAccount } from '../../shared/db/accounts.ts';
import { logAction } from '../../shared/db/logs.ts';
import { findNamespace, type NamespaceRow } from '../../shared/db/namespaces.ts';
import { generateToken } from '../../shared/db/passwords.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { createAppToken } from '../../shared/db/tokens.ts';
import type { Principal } from '../auth/access.ts';
import { apiErrors } from '../errors.ts';
import { createRobotFor, deleteNamespace, updateNamespaceSettings, withAccountErrors } from './accounts.ts';
import { clientIp, parseInput, requireUser } from './common.ts';

const robotParams = z.object({ shortname: z.string().min(1) });
const appTokenBody = z.object({ title: z.string().min(1).max(255) });
const createUserBody = z.object({ username: z.string().min(1), email: z.string().email().optional(), password: z.string().min(8).optional() });
const userParams = z.object({ username: z.string().min(1) });

/** Registers the user and superuser routes. */
export async function registerUserRoutes(app: FastifyInstance): Promise<void> {
  app.get('/user/', async (request) => userView(request, await ownNamespace(request)));

  app.put('/user/', async (request) => {
    const user = await ownNamespace(request);
    await updateNamespaceSettings(request, await requireUser(request), user);
    return userView(request, (await findNamespace(app.deps.db, user.username))!);
  });

  app.delete('/user/', async (request, reply) => {
    const principal = await requireUser(request);
    await deleteNamespace(request, principal, await ownNamespace(request));
    return reply.status(204).send();
  });

  app.put('/user/robots/:shortname', async (request, reply) => {
    const { shortname } = parseInput(robotParams, request.params);
    const principal = await requireUser(request);
    return reply.status(201).send(await createRobotFor(request, principal, await ownNamespace(request), shortname));
  });

  app.post('/user/apptoken', async (request) => createAppTokenRoute(app, request));

  app.post('/superuser/users/', async (request) => {
    await requireSuperuser(request);
    const body = parseInput(createUserBody, request.body, 'user');
    // Quay generates the password and shows it once; quayfleet also accepts one.
    const password = body.password ?? generateToken(32);
    const user = await withAccountErrors(() => withTransaction(app.deps.db, (tx) => createUserAccount(tx, { username: body.username, password, email: body.email ?? null })));
    return { username: user.username, email: user.email, password, encrypted_password: null };
  });

  app.delete('/superuser/users/:username', async (request, reply) => {
    const principal = await requireSuperuser(request);
    const { username } = parseInput(userParams, request.params);
    const user = await findNamespace(app.deps.db, username);
    if (!user || user.organization || user.robot) throw apiErrors.notFound();
    if (app.deps.config.quay.SUPER_USERS.includes(username)) throw apiErrors.forbidden('Cannot delete a superuser');
    await deleteNamespace(request, principal, user);
    return reply.status(204).send();
  });
}

/** POST /user/apptoken: a new app token, its code shown this once. */
async function createAppTokenRoute(app: FastifyInstance, request: FastifyRequest): Promise<Record<string, unknown>> {
  const principal = await requireUser(request);
  if (!app.deps.config.quay.FEATURE_APP_SPECIFIC_TOKENS) throw apiErrors.notFound();
  const { title } = parseInput(appTokenBody, request.body, 'app token');
  const { row, token } = await withTransaction(app.deps.db, async (tx) => {
    const created = await createAppToken(tx, { userId: principal.id, title });
    await logAction(tx, app.deps.config.quay, {
      kind: 'create_app_specific_token', namespace: { id: principal.id, name: principal.username }, performerId: principal.id, ip: clientIp(request),
      metadata: { app_specific_token_title: title, app_specific_token: created.row.uuid },
    });
    return created;
  });
  return { token: { uuid: row.uuid, title: row.title, last_accessed: null, created: row.created.toUTCString().replace('GMT', '-0000'), expiration: null, token_code: token } };
}

async function ownNamespace(request: FastifyRequest): Promise<NamespaceRow> {
  const principal = await requireUser(request);
  const user = await findNamespace(request.server.deps.db, principal.username);
  if (!user) throw apiErrors.unauthorized('Requires authentication');
  return user;
}

async function requireSuperuser(request: FastifyRequest): Promise<Principal & { id: number; username: string }> {
  const principal = await requireUser(request);
  if (!principal.superuser) throw apiErrors.forbidden();
  return principal;
}

/** Quay's user view, reduced to what quayfleet knows. */
async function userView(request: FastifyRequest, user: NamespaceRow): Promise<Record<string, unknown>> {
  const { rows } = await request.server.deps.db.query<{ username: string }>(
    `SELECT DISTINCT o.username FROM team t JOIN teammember m ON m.team_id = t.id JOIN namespace o ON o.id = t.organization_id
     WHERE m.user_id = $1 AND NOT o.deleted ORDER BY o.username`, [user.id]);
  return {
    anonymous: false, username: user.username, email: user.email, verified: true, avatar: { name: user.username, hash: '', color: '#000000', kind: 'user' },
    organizations: rows.map((row) => ({ name: row.username })), super_user: request.server.deps.config.quay.SUPER_USERS.includes(user.username),
    tag_expiration_s: user.removed_tag_expiration_s, can_create_repo: true, is_free_account: true,
  };
}
