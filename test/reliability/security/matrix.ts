/**
 * The authorization matrix: for every route the app serves (routes.ts reads them from the app), one
 * row of cases, each naming the principals that must be let through; every other principal must
 * be refused (401 or 403, Quay's answers to a missing credential and a missing permission). A
 * route without a row fails the check, so a new route cannot ship without its expectations.
 * Destructive cases act on a fresh object per call, so each principal meets the same world.
 */
import { randomBytes } from 'node:crypto';
import { imageManifest, sha256 } from '../../../registry/v2/test-support.ts';
import { basicAuth } from '../../helpers/registry.ts';
import { HOOKS, PRINCIPALS, USERNAMES, type PrincipalName, type SecurityFixture } from './fixture.ts';

/** One request of a case. `auth` 'api' sends the principal's Basic header, 'v2' its bearer token. */
export interface MatrixRequest {
  method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  auth: 'api' | 'v2' | 'none' | { header: string | undefined };
  body?: unknown;
  headers?: Record<string, string>;
  payload?: Buffer;
}

/** A case: who may, and the request (built per principal, on fresh objects where it destroys). */
export interface MatrixCase {
  readonly allow: readonly PrincipalName[];
  request(fx: SecurityFixture, who: PrincipalName): Promise<MatrixRequest>;
}

const SIGNED_IN = PRINCIPALS.filter((p) => p !== 'anonymous');
const HUMANS: PrincipalName[] = SIGNED_IN.filter((p) => p !== 'robot' && p !== 'mirrorRobot');
const ALL = PRINCIPALS;
const SUPER: PrincipalName[] = ['superuser'];
const READ: PrincipalName[] = ['orgAdmin', 'teamRead', 'teamWrite', 'teamAdmin', 'robot', 'superuser'];
const WRITE: PrincipalName[] = ['orgAdmin', 'teamWrite', 'teamAdmin', 'robot', 'superuser'];
const ADMIN: PrincipalName[] = ['orgAdmin', 'teamAdmin', 'superuser'];
const ORG_MEMBERS: PrincipalName[] = ['orgAdmin', 'orgMember', 'orgCreator', 'teamRead', 'teamWrite', 'teamAdmin', 'superuser'];
const ORG_ADMIN: PrincipalName[] = ['orgAdmin', 'superuser'];
const ORG_CREATE: PrincipalName[] = ['orgAdmin', 'orgCreator', 'superuser'];
const MIRROR_ONLY: PrincipalName[] = ['mirrorRobot'];
const NOBODY: PrincipalName[] = [];

let counter = 0;
const unique = (prefix: string) => `${prefix}${++counter}${randomBytes(2).toString('hex')}`;

const api = (method: MatrixRequest['method'], url: string, body?: unknown): MatrixRequest => ({ method, url: `/api/v1${url}`, auth: 'api', ...(body === undefined ? {} : { body }) });
const v2 = (method: MatrixRequest['method'], url: string, extra: Partial<MatrixRequest> = {}): MatrixRequest => ({ method, url, auth: 'v2', ...extra });
const fixed = (allow: readonly PrincipalName[], build: (fx: SecurityFixture) => MatrixRequest): MatrixCase => ({ allow, request: async (fx) => build(fx) });
const fresh = (allow: readonly PrincipalName[], build: (fx: SecurityFixture, who: PrincipalName) => Promise<MatrixRequest>): MatrixCase => ({ allow, request: build });

// --- fresh objects, made by the organization's admin (or the superuser) -------------------------

async function setupApi(fx: SecurityFixture, method: MatrixRequest['method'], url: string, body: unknown, as: PrincipalName = 'orgAdmin'): Promise<Record<string, unknown>> {
  const response = await fx.t.app.inject({ method, url: `/api/v1${url}`, headers: { authorization: fx.apiAuth(as)!, 'content-type': 'application/json' }, payload: JSON.stringify(body ?? {}) });
  if (response.statusCode >= 300) throw new Error(`matrix setup ${method} ${url}: ${response.statusCode} ${response.body}`);
  return response.body === '' ? {} : response.json() as Record<string, unknown>;
}

async function freshRepository(fx: SecurityFixture): Promise<string> {
  const name = unique('gone');
  await fx.t.createRepository(`acme/${name}`);
  for (const [team, role] of [['readers', 'read'], ['writers', 'write'], ['repoadmins', 'admin']] as const) await fx.t.grant(`acme/${name}`, { team }, role);
  await fx.t.grant(`acme/${name}`, { user: 'acme+bot' }, 'write');
  return name;
}

async function freshManifest(fx: SecurityFixture, repository: 'acme/app' | 'acme/mirrored'): Promise<string> {
  const client = repository === 'acme/app' ? fx.admin : fx.mirror;
  const config = Buffer.from(JSON.stringify({ fresh: unique('m') }));
  await client.uploadBlob(repository, config, 'monolithic');
  const manifest = imageManifest(config, []);
  const response = await client.putManifest(repository, manifest);
  if (response.statusCode !== 201) throw new Error(`matrix setup: manifest push ${response.statusCode} ${response.body}`);
  return manifest.digest;
}

const notificationBody = (event: string) => ({ event, method: 'webhook', config: { url: `https://${HOOKS}/n` }, eventConfig: {}, title: unique('n') });

async function ensureQuota(fx: SecurityFixture): Promise<string> {
  const quotas = await setupApi(fx, 'GET', '/organization/acme/quota', undefined, 'superuser') as unknown as { id: number }[];
  if (quotas[0]) return String(quotas[0].id);
  await setupApi(fx, 'POST', '/organization/acme/quota', { limit_bytes: 10 * 1024 ** 3 }, 'superuser');
  return ensureQuota(fx);
}

async function freshLimit(fx: SecurityFixture): Promise<[string, string]> {
  const quotaId = await ensureQuota(fx);
  const percent = 1 + (++counter % 98);
  await setupApi(fx, 'POST', `/organization/acme/quota/${quotaId}/limit`, { type: 'Warning', threshold_percent: percent }, 'superuser');
  const quota = await setupApi(fx, 'GET', `/organization/acme/quota/${quotaId}`, undefined, 'superuser') as { limits: { id: number; limit_percent?: number; threshold_percent?: number }[] };
  const limit = quota.limits.find((l) => (l.limit_percent ?? l.threshold_percent) === percent) ?? quota.limits.at(-1)!;
  return [quotaId, String(limit.id)];
}

// --- the matrix ----------------------------------------------------------------------------------

const repo = '/repository/acme/app';
const mirrored = '/repository/acme/mirrored';

/** Rows by route key (`METHOD pattern`, as routes.ts spells it). */
export const MATRIX: Record<string, MatrixCase[]> = {
  'GET /_internal_ping': [fixed(ALL, () => ({ method: 'GET', url: '/_internal_ping', auth: 'api' }))],
  'GET /v1/_internal_ping': [fixed(ALL, () => ({ method: 'GET', url: '/v1/_internal_ping', auth: 'api' }))],
  'GET /health': [fixed(ALL, () => ({ method: 'GET', url: '/health', auth: 'api' }))],
  'GET /health/endtoend': [fixed(ALL, () => ({ method: 'GET', url: '/health/endtoend', auth: 'api' }))],
  'GET /health/instance': [fixed(ALL, () => ({ method: 'GET', url: '/health/instance', auth: 'api' }))],
  'GET /health/warning': [fixed(ALL, () => ({ method: 'GET', url: '/health/warning', auth: 'api' }))],
  'GET /secscan/_internal_ping': [fixed(ALL, () => ({ method: 'GET', url: '/secscan/_internal_ping', auth: 'api' }))],
  // Clair authenticates with its PSK-signed JWT, never with a user's credentials.
  'POST /secscan/notification': [fixed(NOBODY, () => ({ method: 'POST', url: '/secscan/notification', auth: 'api', body: { notification_id: 'n1', callback: 'http://clair.invalid/x' } }))],
  // The link of an exported log file is its capability (an unguessable id): 404, never 401.
  'GET /exportedlogs/:file': [fixed(ALL, () => ({ method: 'GET', url: `/exportedlogs/${randomBytes(16).toString('hex')}`, auth: 'api' }))],

  // The effective config (redacted) is the superuser's (and Quay's config tool's).
  'GET /api/v1/config': [fixed(SUPER, () => api('GET', '/config'))],
  'POST /api/v1/config/validate': [fixed(SUPER, () => api('POST', '/config/validate', { config: { SERVER_HOSTNAME: 'x.example' } }))],

  'POST /api/v1/organization': [fresh(HUMANS, async () => api('POST', '/organization/', { name: unique('neworg'), email: `${unique('e')}@example.com` }))],
  'GET /api/v1/organization/:org': [fixed(ORG_MEMBERS, () => api('GET', '/organization/acme'))],
  'PUT /api/v1/organization/:org': [fixed(ORG_ADMIN, () => api('PUT', '/organization/acme', {}))],
  'DELETE /api/v1/organization/:org': [fresh(ORG_ADMIN, async (fx) => {
    const name = unique('goneorg');
    await fx.t.createOrganization(name, USERNAMES.orgAdmin);
    // A member who is not an admin of the fresh organization, like the matrix's plain member.
    await fx.t.createTeam(name, 'plain', 'member', [USERNAMES.orgMember, USERNAMES.orgCreator, USERNAMES.teamRead, USERNAMES.teamWrite, USERNAMES.teamAdmin]);
    return api('DELETE', `/organization/${name}`);
  })],
  'GET /api/v1/organization/:org/logs': [fixed(ORG_ADMIN, () => api('GET', '/organization/acme/logs'))],
  'GET /api/v1/organization/:org/aggregatelogs': [fixed(ORG_ADMIN, () => api('GET', '/organization/acme/aggregatelogs'))],
  'POST /api/v1/organization/:org/exportlogs': [fixed(ORG_ADMIN, () => api('POST', '/organization/acme/exportlogs', { callback_url: `https://${HOOKS}/export` }))],
  'GET /api/v1/organization/:org/notifications': [fixed(ORG_ADMIN, () => api('GET', '/organization/acme/notifications'))],
  'POST /api/v1/organization/:org/notifications': [fixed(ORG_ADMIN, () => api('POST', '/organization/acme/notifications', notificationBody('quota_warning')))],
  'GET /api/v1/organization/:org/notifications/:uuid': [fixed(ORG_ADMIN, (fx) => api('GET', `/organization/acme/notifications/${fx.orgNotificationUuid}`))],
  'POST /api/v1/organization/:org/notifications/:uuid': [fixed(ORG_ADMIN, (fx) => api('POST', `/organization/acme/notifications/${fx.orgNotificationUuid}`))],
  'POST /api/v1/organization/:org/notifications/:uuid/test': [fixed(ORG_ADMIN, (fx) => api('POST', `/organization/acme/notifications/${fx.orgNotificationUuid}/test`))],
  'DELETE /api/v1/organization/:org/notifications/:uuid': [fresh(ORG_ADMIN, async (fx) => {
    const created = await setupApi(fx, 'POST', '/organization/acme/notifications', notificationBody('quota_error'));
    return api('DELETE', `/organization/acme/notifications/${created.uuid}`);
  })],
  'GET /api/v1/organization/:org/quota': [fixed(ORG_MEMBERS, () => api('GET', '/organization/acme/quota'))],
  // Creating is the organization admin's too with DEFAULT_SYSTEM_REJECT_QUOTA_BYTES 0 (Quay's rule).
  'POST /api/v1/organization/:org/quota': [fixed(ORG_ADMIN, () => api('POST', '/organization/acme/quota', { limit_bytes: 1024 ** 3 }))],
  'GET /api/v1/organization/:org/quota/:quota_id': [fixed(ORG_MEMBERS, (fx) => api('GET', `/organization/acme/quota/${fx.quotaId}`))],
  'PUT /api/v1/organization/:org/quota/:quota_id': [fresh(SUPER, async (fx) => api('PUT', `/organization/acme/quota/${await ensureQuota(fx)}`, { limit_bytes: 10 * 1024 ** 3 }))],
  'DELETE /api/v1/organization/:org/quota/:quota_id': [fresh(SUPER, async (fx) => api('DELETE', `/organization/acme/quota/${await ensureQuota(fx)}`))],
  'GET /api/v1/organization/:org/quota/:quota_id/limit': [fresh(ORG_MEMBERS, async (fx) => api('GET', `/organization/acme/quota/${await ensureQuota(fx)}/limit`))],
  'POST /api/v1/organization/:org/quota/:quota_id/limit': [fresh(ORG_ADMIN, async (fx) => api('POST', `/organization/acme/quota/${await ensureQuota(fx)}/limit`, { type: 'Reject', threshold_percent: 1 + (++counter % 98) }))],
  'GET /api/v1/organization/:org/quota/:quota_id/limit/:limit_id': [fresh(ORG_MEMBERS, async (fx) => {
    const [quotaId, limitId] = await freshLimit(fx);
    return api('GET', `/organization/acme/quota/${quotaId}/limit/${limitId}`);
  })],
  'PUT /api/v1/organization/:org/quota/:quota_id/limit/:limit_id': [fresh(SUPER, async (fx) => {
    const [quotaId, limitId] = await freshLimit(fx);
    return api('PUT', `/organization/acme/quota/${quotaId}/limit/${limitId}`, { type: 'Warning', threshold_percent: 99 });
  })],
  'DELETE /api/v1/organization/:org/quota/:quota_id/limit/:limit_id': [fresh(SUPER, async (fx) => {
    const [quotaId, limitId] = await freshLimit(fx);
    return api('DELETE', `/organization/acme/quota/${quotaId}/limit/${limitId}`);
  })],
  'PUT /api/v1/organization/:org/robots/:shortname': [fresh(ORG_ADMIN, async () => api('PUT', `/organization/acme/robots/${unique('r')}`, {}))],
  'PUT /api/v1/organization/:org/team/:team': [fixed(ORG_ADMIN, () => api('PUT', '/organization/acme/team/victims', { role: 'member' }))],
  'PUT /api/v1/organization/:org/team/:team/members/:member': [fixed(ORG_ADMIN, () => api('PUT', '/organization/acme/team/victims/members/bystander'))],
  'DELETE /api/v1/organization/:org/team/:team/members/:member': [fresh(ORG_ADMIN, async (fx) => {
    await setupApi(fx, 'PUT', '/organization/acme/team/victims/members/bystander', {});
    return api('DELETE', '/organization/acme/team/victims/members/bystander');
  })],

  // Listing filters by what the caller may see; anyone may ask.
  'GET /api/v1/repository': [fixed(ALL, () => api('GET', '/repository?namespace=acme'))],
  'POST /api/v1/repository': [fresh(ORG_CREATE, async () => api('POST', '/repository', { namespace: 'acme', repository: unique('new'), visibility: 'private', description: '' }))],
  'GET /api/v1/repository/:namespace/:repository': [fixed(READ, () => api('GET', repo))],
  'DELETE /api/v1/repository/:namespace/:repository': [fresh(ADMIN, async (fx) => api('DELETE', `/repository/acme/${await freshRepository(fx)}`))],
  'PUT /api/v1/repository/:namespace/:repository/changestate': [fixed(ADMIN, () => api('PUT', `${repo}/changestate`, { state: 'NORMAL' }))],
  'POST /api/v1/repository/:namespace/:repository/changevisibility': [fixed(ADMIN, () => api('POST', `${repo}/changevisibility`, { visibility: 'private' }))],
  'GET /api/v1/repository/:namespace/:repository/logs': [fixed(ADMIN, () => api('GET', `${repo}/logs`))],
  'GET /api/v1/repository/:namespace/:repository/aggregatelogs': [fixed(ADMIN, () => api('GET', `${repo}/aggregatelogs`))],
  'POST /api/v1/repository/:namespace/:repository/exportlogs': [fixed(ADMIN, () => api('POST', `${repo}/exportlogs`, { callback_url: `https://${HOOKS}/export` }))],
  'GET /api/v1/repository/:namespace/:repository/mirror': [fixed(ADMIN, () => api('GET', `${mirrored}/mirror`))],
  'POST /api/v1/repository/:namespace/:repository/mirror': [fixed(ADMIN, () => api('POST', `${mirrored}/mirror`, {
    external_reference: 'upstream.example/library/busybox', sync_interval: 3600, sync_start_date: '2026-01-01T00:00:00Z',
    robot_username: 'acme+mirror', root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['*'] },
  }))],
  'PUT /api/v1/repository/:namespace/:repository/mirror': [fixed(ADMIN, () => api('PUT', `${mirrored}/mirror`, { is_enabled: false }))],
  'POST /api/v1/repository/:namespace/:repository/mirror/sync-now': [fixed(ADMIN, () => api('POST', `${mirrored}/mirror/sync-now`))],
  'POST /api/v1/repository/:namespace/:repository/mirror/sync-cancel': [fixed(ADMIN, () => api('POST', `${mirrored}/mirror/sync-cancel`))],
  'GET /api/v1/repository/:namespace/:repository/notification': [fixed(ADMIN, () => api('GET', `${repo}/notification/`))],
  'POST /api/v1/repository/:namespace/:repository/notification': [fixed(ADMIN, () => api('POST', `${repo}/notification/`, notificationBody('repo_push')))],
  'GET /api/v1/repository/:namespace/:repository/notification/:uuid': [fixed(ADMIN, (fx) => api('GET', `${repo}/notification/${fx.notificationUuid}`))],
  'POST /api/v1/repository/:namespace/:repository/notification/:uuid': [fixed(ADMIN, (fx) => api('POST', `${repo}/notification/${fx.notificationUuid}`))],
  'POST /api/v1/repository/:namespace/:repository/notification/:uuid/test': [fixed(ADMIN, (fx) => api('POST', `${repo}/notification/${fx.notificationUuid}/test`))],
  'DELETE /api/v1/repository/:namespace/:repository/notification/:uuid': [fresh(ADMIN, async (fx) => {
    const created = await setupApi(fx, 'POST', `${repo}/notification/`, notificationBody('repo_push'));
    return api('DELETE', `${repo}/notification/${created.uuid}`);
  })],
  'PUT /api/v1/repository/:namespace/:repository/permissions/user/:username': [fixed(ADMIN, () => api('PUT', `${repo}/permissions/user/bystander`, { role: 'read' }))],
  'DELETE /api/v1/repository/:namespace/:repository/permissions/user/:username': [fresh(ADMIN, async (fx) => {
    await setupApi(fx, 'PUT', `${repo}/permissions/user/bystander`, { role: 'read' });
    return api('DELETE', `${repo}/permissions/user/bystander`);
  })],
  'PUT /api/v1/repository/:namespace/:repository/permissions/team/:team': [fixed(ADMIN, () => api('PUT', `${repo}/permissions/team/victims`, { role: 'read' }))],
  'DELETE /api/v1/repository/:namespace/:repository/permissions/team/:team': [fresh(ADMIN, async (fx) => {
    await setupApi(fx, 'PUT', `${repo}/permissions/team/victims`, { role: 'read' });
    return api('DELETE', `${repo}/permissions/team/victims`);
  })],
  'GET /api/v1/repository/:namespace/:repository/tag': [fixed(READ, () => api('GET', `${repo}/tag/`))],
  'DELETE /api/v1/repository/:namespace/:repository/tag/:tag': [fresh(WRITE, async (fx) => {
    const tag = unique('t');
    await fx.admin.putManifest('acme/app', fx.image, tag);
    return api('DELETE', `${repo}/tag/${tag}`);
  })],
  'POST /api/v1/repository/:namespace/:repository/tag/:tag/expire': [fresh(WRITE, async (fx) => {
    const tag = unique('t');
    await fx.admin.putManifest('acme/app', fx.image, tag);
    return api('POST', `${repo}/tag/${tag}/expire`, { is_alive: true });
  })],
  'POST /api/v1/repository/:namespace/:repository/tag/:tag/restore': [fixed(WRITE, (fx) => api('POST', `${repo}/tag/latest/restore`, { manifest_digest: fx.image.digest }))],

  'GET /api/v1/superuser/logs': [fixed(SUPER, () => api('GET', '/superuser/logs'))],
  'GET /api/v1/superuser/aggregatelogs': [fixed(SUPER, () => api('GET', '/superuser/aggregatelogs'))],
  'GET /api/v1/superuser/gc/dryrun': [fixed(SUPER, () => api('GET', '/superuser/gc/dryrun'))],
  'GET /api/v1/superuser/registrysize': [fixed(SUPER, () => api('GET', '/superuser/registrysize/'))],
  'POST /api/v1/superuser/registrysize': [fixed(SUPER, () => api('POST', '/superuser/registrysize/', {}))],
  'POST /api/v1/superuser/users': [fresh(SUPER, async () => api('POST', '/superuser/users/', { username: unique('su'), email: `${unique('e')}@example.com` }))],
  'DELETE /api/v1/superuser/users/:username|:namespace': [fresh(SUPER, async (fx) => {
    const name = unique('victim');
    await fx.t.createUser(name, 'a long enough password');
    return api('DELETE', `/superuser/users/${name}`);
  })],
  'GET /api/v1/superuser/users/:username|:namespace/quota': [fixed(SUPER, () => api('GET', '/superuser/users/bystander/quota'))],
  'POST /api/v1/superuser/users/:username|:namespace/quota': [fixed(SUPER, () => api('POST', '/superuser/users/bystander/quota', { limit_bytes: 1024 ** 3 }))],
  'PUT /api/v1/superuser/users/:username|:namespace/quota/:quota_id': [fixed(SUPER, () => api('PUT', '/superuser/users/bystander/quota/999999', { limit_bytes: 1024 ** 3 }))],
  'DELETE /api/v1/superuser/users/:username|:namespace/quota/:quota_id': [fixed(SUPER, () => api('DELETE', '/superuser/users/bystander/quota/999999'))],
  'GET /api/v1/superuser/organization/:namespace/quota': [fixed(SUPER, () => api('GET', '/superuser/organization/acme/quota'))],
  'POST /api/v1/superuser/organization/:namespace/quota': [fixed(SUPER, () => api('POST', '/superuser/organization/acme/quota', { limit_bytes: 1024 ** 3 }))],
  'PUT /api/v1/superuser/organization/:namespace/quota/:quota_id': [fixed(SUPER, () => api('PUT', '/superuser/organization/acme/quota/999999', { limit_bytes: 1024 ** 3 }))],
  'DELETE /api/v1/superuser/organization/:namespace/quota/:quota_id': [fixed(SUPER, () => api('DELETE', '/superuser/organization/acme/quota/999999'))],

  'GET /api/v1/user': [fixed(HUMANS, () => api('GET', '/user/'))],
  'PUT /api/v1/user': [fixed(HUMANS, () => api('PUT', '/user/', {}))],
  // The caller deletes itself: a fresh user of the same kind stands in for each human principal.
  'DELETE /api/v1/user': [fresh(HUMANS, async (fx, who) => {
    if (!HUMANS.includes(who)) return { ...api('DELETE', '/user/'), auth: 'api' };
    const name = unique('self');
    await fx.t.createUser(name, 'a long enough password', { superuser: who === 'superuser' });
    return { ...api('DELETE', '/user/'), auth: { header: basicAuth(name, 'a long enough password') } };
  })],
  'GET /api/v1/user/logs': [fixed(HUMANS, () => api('GET', '/user/logs'))],
  'GET /api/v1/user/aggregatelogs': [fixed(HUMANS, () => api('GET', '/user/aggregatelogs'))],
  'POST /api/v1/user/exportlogs': [fixed(HUMANS, () => api('POST', '/user/exportlogs', { callback_url: `https://${HOOKS}/export` }))],
  'POST /api/v1/user/apptoken': [fixed(HUMANS, () => api('POST', '/user/apptoken', { title: 'matrix' }))],
  'PUT /api/v1/user/robots/:shortname': [fresh(HUMANS, async () => api('PUT', `/user/robots/${unique('r')}`, {}))],
  'GET /api/v1/user/notifications': [fixed(HUMANS, () => api('GET', '/user/notifications'))],
  'GET /api/v1/user/notifications/:uuid': [fixed(HUMANS, () => api('GET', `/user/notifications/${crypto.randomUUID()}`))],
  'PUT /api/v1/user/notifications/:uuid': [fixed(HUMANS, () => api('PUT', `/user/notifications/${crypto.randomUUID()}`, { dismissed: true }))],
  'GET /api/v1/user/namespacenotifications': [fixed(HUMANS, () => api('GET', '/user/namespacenotifications'))],
  'POST /api/v1/user/namespacenotifications': [fixed(HUMANS, () => api('POST', '/user/namespacenotifications', notificationBody('quota_warning')))],
  'GET /api/v1/user/namespacenotifications/:uuid': [fixed(HUMANS, (fx) => api('GET', `/user/namespacenotifications/${fx.userNotificationUuid}`))],
  'POST /api/v1/user/namespacenotifications/:uuid': [fixed(HUMANS, (fx) => api('POST', `/user/namespacenotifications/${fx.userNotificationUuid}`))],
  'POST /api/v1/user/namespacenotifications/:uuid/test': [fixed(HUMANS, (fx) => api('POST', `/user/namespacenotifications/${fx.userNotificationUuid}/test`))],
  'DELETE /api/v1/user/namespacenotifications/:uuid': [fresh(HUMANS, async (fx) => {
    const created = await setupApi(fx, 'POST', '/user/namespacenotifications', notificationBody('quota_error'));
    return api('DELETE', `/user/namespacenotifications/${created.uuid}`);
  })],
  'GET /api/v1/user/quota': [fixed(HUMANS, () => api('GET', '/user/quota'))],
  'GET /api/v1/user/quota/:quota_id': [fixed(HUMANS, () => api('GET', '/user/quota/999999'))],
  'GET /api/v1/user/quota/:quota_id/limit': [fixed(HUMANS, () => api('GET', '/user/quota/999999/limit'))],
  'GET /api/v1/user/quota/:quota_id/limit/:limit_id': [fixed(HUMANS, () => api('GET', '/user/quota/999999/limit/1'))],

  // --- /v2 (the wildcard route carries every repository endpoint) --------------------------------
  'GET /v2': [fixed(SIGNED_IN, () => v2('GET', '/v2/'))],
  'GET /v2/_catalog': [fixed(ALL, () => v2('GET', '/v2/_catalog'))],
  'GET /v2/auth': [fixed(ALL, (fx) => ({ method: 'GET', url: `/v2/auth?service=${fx.t.deps.config.quay.SERVER_HOSTNAME}&scope=repository:acme/app:pull`, auth: 'api' }))],
  'GET /v2*': [
    fixed(READ, (fx) => v2('GET', `/v2/acme/app/manifests/${fx.image.digest}`)),
    fixed(READ, () => v2('GET', '/v2/acme/app/manifests/latest')),
    fixed(READ, (fx) => v2('GET', `/v2/acme/app/blobs/${fx.layerDigest}`)),
    fixed(READ, () => v2('GET', '/v2/acme/app/tags/list')),
    fixed(READ, (fx) => v2('GET', `/v2/acme/app/referrers/${fx.image.digest}`)),
    fixed([...READ, 'mirrorRobot'], () => v2('GET', '/v2/acme/mirrored/manifests/latest')),
    fresh(WRITE, async (fx) => v2('GET', await fx.admin.startUpload('acme/app'))),
  ],
  'PUT /v2*': [
    fresh(WRITE, async (fx) => {
      const config = Buffer.from(JSON.stringify({ put: unique('p') }));
      await fx.admin.uploadBlob('acme/app', config, 'monolithic');
      const manifest = imageManifest(config, []);
      return v2('PUT', `/v2/acme/app/manifests/${unique('tag')}`, { headers: { 'content-type': manifest.mediaType }, payload: manifest.bytes });
    }),
    // A mirror takes pushes only from its robot: not its admins, not a superuser.
    fixed(MIRROR_ONLY, (fx) => v2('PUT', '/v2/acme/mirrored/manifests/pushed', { headers: { 'content-type': fx.image.mediaType }, payload: fx.image.bytes })),
    fresh(WRITE, async (fx) => {
      const bytes = randomBytes(64);
      const location = await fx.admin.startUpload('acme/app');
      return v2('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${sha256(bytes)}`, { headers: { 'content-type': 'application/octet-stream' }, payload: bytes });
    }),
  ],
  'POST /v2*': [
    fixed(WRITE, () => v2('POST', '/v2/acme/app/blobs/uploads/')),
    fixed(MIRROR_ONLY, () => v2('POST', '/v2/acme/mirrored/blobs/uploads/')),
  ],
  'PATCH /v2*': [
    fresh(WRITE, async (fx) => v2('PATCH', await fx.admin.startUpload('acme/app'), { headers: { 'content-type': 'application/octet-stream' }, payload: randomBytes(32) })),
  ],
  'DELETE /v2*': [
    fresh(WRITE, async (fx) => v2('DELETE', `/v2/acme/app/manifests/${await freshManifest(fx, 'acme/app')}`)),
    fresh(MIRROR_ONLY, async (fx) => v2('DELETE', `/v2/acme/mirrored/manifests/${await freshManifest(fx, 'acme/mirrored')}`)),
    fresh(WRITE, async (fx) => v2('DELETE', await fx.admin.startUpload('acme/app'))),
    fresh(WRITE, async (fx) => v2('DELETE', `/v2/acme/app/blobs/${await fx.admin.uploadBlob('acme/app', randomBytes(48), 'monolithic')}`)),
  ],
};
