/**
 * Quay's repository mirror API (`/api/v1/repository/{ns}/{repo}/mirror`, sync-now, sync-cancel)
 * and repository states (`PUT .../changestate`). Mirror routes exist only with
 * FEATURE_REPO_MIRROR (404 otherwise, as Quay's show_if) and need repository admin. Statuses and
 * errors are Quay's: 201 with an empty body for POST and PUT, 409 when a config exists, 404 for a
 * refused sync-now or cancel. Each changed field writes `repo_mirror_config_changed`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { repomirror } from '../../queues/repomirror.ts';
import { logAction, type LogKind } from '../../shared/db/logs.ts';
import {
  cancelSync, createMirror, getMirrorByRepository, grantMirrorRobot, requestSyncNow, updateMirror, type MirrorChanges, type MirrorConfigRow,
} from '../../shared/db/mirrors.ts';
import { findRobot } from '../../shared/db/namespaces.ts';
import { enqueueInTransaction } from '../../shared/db/outbox.ts';
import { withTransaction, type Queryable } from '../../shared/db/pool.ts';
import { RepositoryState, type RepositoryRow } from '../../shared/db/repositories.ts';
import type { Principal } from '../auth/access.ts';
import { apiErrors } from '../errors.ts';
import { clientIp, parseInput, repositoryParams, requireRepositoryRole } from './common.ts';
import {
  changeBody, checkProxies, checkReference, createBody, encrypterFor, MIN_TIMEOUT_S, mirrorView, parseArchitectures, parseRule, parseStartDate,
} from './mirror-input.ts';

const SETTABLE_STATES = ['NORMAL', 'READ_ONLY', 'MIRROR'] as const;

interface Target {
  readonly principal: Principal;
  readonly repository: RepositoryRow;
}

async function adminTarget(app: FastifyInstance, request: FastifyRequest): Promise<Target> {
  if (!app.deps.config.quay.FEATURE_REPO_MIRROR) throw apiErrors.notFound();
  const { namespace, repository } = parseInput(repositoryParams, request.params);
  const { principal, repository: repo } = await requireRepositoryRole(request, namespace, repository, 'admin');
  return { principal, repository: repo };
}

async function auditLog(tx: Queryable, request: FastifyRequest, target: Target, kind: LogKind, metadata: Record<string, unknown>): Promise<void> {
  await logAction(tx, request.server.deps.config.quay, {
    kind, namespace: { id: target.repository.namespace_user_id, name: target.repository.namespace }, performerId: target.principal.id ?? null, repositoryId: target.repository.id,
    ip: clientIp(request), metadata: { namespace: target.repository.namespace, repo: target.repository.name, ...metadata },
  });
}

// A robot of the repository's namespace: Quay's `<namespace>+<name>`.
async function mirrorRobot(app: FastifyInstance, repository: RepositoryRow, username: string): Promise<number> {
  const [namespace, shortname] = username.split('+');
  if (!shortname || username.split('+').length !== 2) throw apiErrors.badRequest('Invalid robot username');
  if (namespace !== repository.namespace) throw apiErrors.badRequest('Robot account must belong to the repository namespace');
  const robot = await findRobot(app.deps.db, username);
  if (!robot) throw apiErrors.badRequest(`Robot account ${username} does not exist`);
  return robot.id;
}

async function createRoute(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const target = await adminTarget(app, request);
  const body = parseInput(createBody, request.body, 'mirror configuration');
  const config = app.deps.config;
  const startDate = parseStartDate(body.sync_start_date);
  const rule = parseRule(body.root_rule);
  const architectures = parseArchitectures(config, body.architecture_filter ?? []);
  const reference = await checkReference(config, body.external_reference);
  checkProxies(config, body.external_registry_config?.proxy);
  const robotId = await mirrorRobot(app, target.repository, body.robot_username);
  const username = body.external_registry_username || null;
  const password = body.external_registry_password || null;
  if (password && !username) throw apiErrors.badRequest('Unable to set a new password without also specifying a username.');
  const encrypter = username || password ? encrypterFor(config) : undefined;
  const created = await withTransaction(app.deps.db, async (tx) => {
    const ok = await createMirror(tx, {
      repositoryId: target.repository.id, isEnabled: body.is_enabled ?? true, robotId, externalReference: reference,
      username: username && encrypter!.encrypt(username), password: password && encrypter!.encrypt(password),
      registryConfig: body.external_registry_config ?? {}, architectureFilter: architectures, syncInterval: body.sync_interval,
      syncStartDate: startDate, ruleType: rule.type, ruleValue: rule.value, skopeoTimeout: body.skopeo_timeout_interval ?? MIN_TIMEOUT_S,
    });
    // Quay's entry for a new mirror (endpoints/api/mirror.py): the reference as a config change.
    if (ok) await auditLog(tx, request, target, 'repo_mirror_config_changed', { changed: 'external_reference', to: reference });
    return ok;
  });
  if (!created) throw apiErrors.conflict(`Mirror configuration already exits for repository ${target.repository.namespace}/${target.repository.name}`);
  return reply.status(201).send();
}

/** The column changes and audit entries of a validated PUT body. */
async function changesOf(app: FastifyInstance, target: Target, mirror: MirrorConfigRow, body: z.output<typeof changeBody>) {
  const config = app.deps.config;
  const changes: MirrorChanges = {};
  const audit: [string, unknown][] = [];
  const set = <K extends keyof MirrorChanges>(key: K, value: MirrorChanges[K], name: string = key, shown: unknown = value): void => {
    changes[key] = value;
    audit.push([name, shown instanceof Date ? shown.toISOString() : shown]);
  };
  if (body.is_enabled !== undefined) set('is_enabled', body.is_enabled);
  if (body.external_reference !== undefined) set('external_reference', await checkReference(config, body.external_reference));
  if (body.sync_interval !== undefined) set('sync_interval', body.sync_interval);
  if (body.sync_start_date !== undefined) set('sync_start_date', parseStartDate(body.sync_start_date));
  if (body.skopeo_timeout_interval !== undefined) set('skopeo_timeout', body.skopeo_timeout_interval, 'skopeo_timeout_interval');
  if (body.architecture_filter !== undefined) set('architecture_filter', parseArchitectures(config, body.architecture_filter));
  if (body.robot_username !== undefined) set('internal_robot_id', await mirrorRobot(app, target.repository, body.robot_username), 'robot_username', body.robot_username);
  if (body.external_registry_config !== undefined) {
    checkProxies(config, body.external_registry_config.proxy);
    const merged = { ...mirror.external_registry_config, ...body.external_registry_config };
    if (body.external_registry_config.proxy) merged.proxy = { ...mirror.external_registry_config.proxy, ...body.external_registry_config.proxy };
    changes.external_registry_config = merged;
    for (const [key, value] of Object.entries(body.external_registry_config)) {
      if (key === 'proxy') for (const [p, v] of Object.entries(value as object)) audit.push([p, v]);
      else audit.push([key, value]);
    }
  }
  const hasUser = body.external_registry_username !== undefined;
  const hasPassword = body.external_registry_password !== undefined;
  if (hasPassword && (!hasUser || (body.external_registry_username === null && body.external_registry_password !== null))) {
    throw apiErrors.badRequest('Unable to set a new password without also specifying a username.');
  }
  if (hasUser) {
    const username = body.external_registry_username || null;
    const password = body.external_registry_password || null;
    const encrypter = username || password ? encrypterFor(config) : undefined;
    set('external_registry_username', username && encrypter!.encrypt(username), 'external_registry_username', username);
    set('external_registry_password', password && encrypter!.encrypt(password), 'external_registry_password', password === null ? null : '********');
  }
  const rule = body.root_rule !== undefined ? parseRule(body.root_rule) : undefined;
  if (rule) audit.push(['mirror_rule', rule.value.join(',')]);
  return { changes, audit, rule };
}

async function changeRoute(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const target = await adminTarget(app, request);
  const body = parseInput(changeBody, request.body, 'mirror configuration');
  const mirror = await getMirrorByRepository(app.deps.db, target.repository.id);
  if (!mirror) throw apiErrors.notFound();
  const { changes, audit, rule } = await changesOf(app, target, mirror, body);
  await withTransaction(app.deps.db, async (tx) => {
    await updateMirror(tx, mirror.id, changes, rule);
    if (changes.internal_robot_id !== undefined) await grantMirrorRobot(tx, target.repository.id, changes.internal_robot_id);
    for (const [changed, to] of audit) await auditLog(tx, request, target, 'repo_mirror_config_changed', { changed, to });
  });
  return reply.status(201).send();
}

/** Registers the mirror routes and changestate. */
export async function registerMirrorRoutes(app: FastifyInstance): Promise<void> {
  const base = '/repository/:namespace/:repository/mirror';
  app.get(base, async (request) => {
    const target = await adminTarget(app, request);
    const mirror = await getMirrorByRepository(app.deps.db, target.repository.id);
    if (!mirror) throw apiErrors.notFound();
    return mirrorView(app.deps.config, mirror);
  });
  app.post(base, (request, reply) => createRoute(app, request, reply));
  app.put(base, (request, reply) => changeRoute(app, request, reply));

  app.post(`${base}/sync-now`, async (request, reply) => {
    const target = await adminTarget(app, request);
    await withTransaction(app.deps.db, async (tx) => {
      if (!(await requestSyncNow(tx, target.repository.id))) throw apiErrors.notFound();
      await auditLog(tx, request, target, 'repo_mirror_config_changed', { changed: 'sync_status', to: 'SYNC_NOW' });
      // Run it now rather than at the next tick; the claim decides whether it is still due.
      await enqueueInTransaction(tx, repomirror, {
        v: 1, repositoryId: target.repository.id, trigger: 'sync_now', namespace: target.repository.namespace, repository: target.repository.name,
      });
    });
    app.deps.onOutboxWrite?.();
    return reply.status(204).send();
  });

  app.post(`${base}/sync-cancel`, async (request, reply) => {
    const target = await adminTarget(app, request);
    await withTransaction(app.deps.db, async (tx) => {
      if (!(await cancelSync(tx, target.repository.id))) throw apiErrors.notFound();
      await auditLog(tx, request, target, 'repo_mirror_config_changed', { changed: 'sync_status', to: 'SYNC_CANCEL' });
    });
    return reply.status(204).send();
  });

  app.put('/repository/:namespace/:repository/changestate', async (request) => {
    const { namespace, repository } = parseInput(repositoryParams, request.params);
    const { principal, repository: repo } = await requireRepositoryRole(request, namespace, repository, 'admin');
    const { state } = parseInput(z.object({ state: z.string() }), request.body, 'state change');
    if (state === 'MIRROR' && !app.deps.config.quay.FEATURE_REPO_MIRROR) throw apiErrors.badRequest(`Unknown Repository State: ${state}`);
    if (!(SETTABLE_STATES as readonly string[]).includes(state)) throw apiErrors.badRequest(`${state} is not a valid Repository state.`);
    await withTransaction(app.deps.db, async (tx) => {
      await tx.query(`UPDATE repository SET state = $2 WHERE id = $1`, [repo.id, RepositoryState[state as (typeof SETTABLE_STATES)[number]]]);
      await auditLog(tx, request, { principal, repository: repo }, 'change_repo_state', { state_changed: state });
    });
    return { success: true };
  });
}
