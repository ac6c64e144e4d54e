/**
 * Every action of the front end writes its action log with Quay's kind name and metadata keys
 * (reference quay-mirror-georep-secscan-logs.md §4, Quay's endpoints/api/*.py and
 * endpoints/v2/manifest.py): one table, one row per action, each row run through the real routes
 * on a real Postgres and checked for exactly the entries it adds (kind, namespace, performer and
 * the keys Quay writes). The worker-side kinds (mirror sync, export results) are proved by their
 * workers' tests; quota changes by quota-logs.test.ts; the skip rules by shared/db/logs.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { V2Client } from '../v2/test-support.ts';

const PASSWORD = 'a long enough password';
const owner: [string, string] = ['owner', PASSWORD];
const member: [string, string] = ['member', PASSWORD];
const leaver: [string, string] = ['leaver', PASSWORD];
const root: [string, string] = ['root', PASSWORD];
let t: TestRegistry;
let v2: V2Client;
const state: { digest?: string; old?: string; notification?: string; nsNotification?: string } = {};

beforeAll(async () => {
  t = await startTestRegistry({
    label: 'logkinds',
    config: { FEATURE_REPO_MIRROR: true, DATABASE_SECRET_KEY: 'log-kinds-secret', SSRF_ALLOWED_HOSTS: ['127.0.0.1'], FEATURE_QUOTA_MANAGEMENT: true },
  });
  await t.createUser('owner', PASSWORD, { email: 'owner@example.com' });
  await t.createUser('member', PASSWORD, { email: 'member@example.com' });
  await t.createUser('leaver', PASSWORD);
  await t.createUser('root', PASSWORD, { superuser: true });
  await t.createOrganization('acme', 'owner');
  await t.createRobot('acme', 'mirror');
}, 60_000);
afterAll(async () => t?.close());

/** One expected entry: its kind, the account it belongs to, who did it, and Quay's metadata keys (and values where they matter). */
interface Expected {
  kind: string;
  account: string;
  performer: string | null;
  keys: string[];
  values?: Record<string, unknown>;
}

interface Row {
  action: string;
  run: () => Promise<{ statusCode: number }>;
  status: number;
  entries: Expected[];
}

const repo = (extra: string[] = []) => ['repo', 'namespace', ...extra];
const e = (kind: string, keys: string[], values?: Record<string, unknown>, account = 'acme', performer: string | null = 'owner'): Expected =>
  ({ kind, keys, values, account, performer });

const ROWS: Row[] = [
  { action: 'POST /organization/', status: 201, run: () => t.api('POST', '/organization/', { as: owner, body: { name: 'gone', email: 'gone@example.com' } }),
    entries: [e('org_create', ['email', 'namespace'], { namespace: 'gone' }, 'gone')] },
  { action: 'POST /repository', status: 201, run: () => t.api('POST', '/repository', { as: owner, body: { namespace: 'acme', repository: 'api', visibility: 'private' } }),
    entries: [e('create_repo', repo(), { repo: 'api', namespace: 'acme' })] },
  { action: 'PUT /v2/.../manifests/<tag> (push)', status: 201, run: async () => {
    const m = await v2.pushImage('acme/web', 'latest', Buffer.from('{"k":1}'), [randomBytes(16)]);
    state.digest = m.digest;
    return { statusCode: 201 };
  }, entries: [e('push_repo', repo(['tag', 'user-agent', 'username']), { tag: 'latest', username: 'owner' })] },
  { action: 'GET /v2/.../manifests/<tag> (pull, buffered)', status: 200, run: () => v2.request('GET', '/v2/acme/web/manifests/latest'),
    entries: [e('pull_repo', repo(['tag', 'user-agent', 'username']), { tag: 'latest' })] },
  { action: 'POST changevisibility', status: 200, run: () => t.api('POST', '/repository/acme/web/changevisibility', { as: owner, body: { visibility: 'public' } }),
    entries: [e('change_repo_visibility', repo(['visibility']), { visibility: 'public' })] },
  { action: 'PUT permissions/user', status: 200, run: () => t.api('PUT', '/repository/acme/web/permissions/user/member', { as: owner, body: { role: 'write' } }),
    entries: [e('change_repo_permission', repo(['username', 'role']), { username: 'member', role: 'write' })] },
  { action: 'DELETE permissions/user', status: 204, run: () => t.api('DELETE', '/repository/acme/web/permissions/user/member', { as: owner }),
    entries: [e('delete_repo_permission', repo(['username']), { username: 'member' })] },
  { action: 'PUT team (new)', status: 200, run: () => t.api('PUT', '/organization/acme/team/builders', { as: owner, body: { role: 'member', description: 'CI' } }),
    entries: [e('org_create_team', ['team'], { team: 'builders' })] },
  { action: 'PUT team (role)', status: 200, run: () => t.api('PUT', '/organization/acme/team/builders', { as: owner, body: { role: 'creator' } }),
    entries: [e('org_set_team_role', ['team', 'role'], { role: 'creator' })] },
  { action: 'PUT team (description)', status: 200, run: () => t.api('PUT', '/organization/acme/team/builders', { as: owner, body: { role: 'creator', description: 'builds' } }),
    entries: [e('org_set_team_description', ['team', 'description'], { description: 'builds' })] },
  { action: 'PUT team (no change)', status: 200, run: () => t.api('PUT', '/organization/acme/team/builders', { as: owner, body: { role: 'creator', description: 'builds' } }),
    entries: [] },
  { action: 'PUT permissions/team', status: 200, run: () => t.api('PUT', '/repository/acme/web/permissions/team/builders', { as: owner, body: { role: 'read' } }),
    entries: [e('change_repo_permission', repo(['team', 'role']), { team: 'builders', role: 'read' })] },
  { action: 'DELETE permissions/team', status: 204, run: () => t.api('DELETE', '/repository/acme/web/permissions/team/builders', { as: owner }),
    entries: [e('delete_repo_permission', repo(['team']), { team: 'builders' })] },
  { action: 'PUT team member', status: 200, run: () => t.api('PUT', '/organization/acme/team/builders/members/member', { as: owner }),
    entries: [e('org_add_team_member', ['member', 'team'], { member: 'member', team: 'builders' })] },
  { action: 'DELETE team member', status: 204, run: () => t.api('DELETE', '/organization/acme/team/builders/members/member', { as: owner }),
    entries: [e('org_remove_team_member', ['member', 'team'], { member: 'member', team: 'builders' })] },
  { action: 'PUT organization robot', status: 201, run: () => t.api('PUT', '/organization/acme/robots/deployer', { as: owner, body: { description: 'deploys' } }),
    entries: [e('create_robot', ['robot', 'description', 'unstructured_metadata'], { robot: 'deployer', description: 'deploys' })] },
  { action: 'PUT user robot', status: 201, run: () => t.api('PUT', '/user/robots/helper', { as: member }),
    entries: [e('create_robot', ['robot', 'description', 'unstructured_metadata'], { robot: 'helper' }, 'member', 'member')] },
  { action: 'PUT organization (time machine)', status: 200, run: () => t.api('PUT', '/organization/acme', { as: owner, body: { tag_expiration_s: 604_800 } }),
    entries: [e('org_change_tag_expiration', ['tag_expiration', 'namespace'], { tag_expiration: 604_800 })] },
  { action: 'PUT organization (e-mail)', status: 200, run: () => t.api('PUT', '/organization/acme', { as: owner, body: { email: 'ops@acme.example' } }),
    entries: [e('org_change_email', ['email', 'namespace', 'old_email'], { email: 'ops@acme.example' })] },
  { action: 'PUT /user/ (time machine)', status: 200, run: () => t.api('PUT', '/user/', { as: member, body: { tag_expiration_s: 86_400 } }),
    entries: [e('user_change_tag_expiration', ['tag_expiration'], { tag_expiration: 86_400 }, 'member', 'member')] },
  { action: 'PUT /user/ (e-mail)', status: 200, run: () => t.api('PUT', '/user/', { as: member, body: { email: 'm2@example.com' } }),
    entries: [e('user_change_email', ['email', 'old_email'], { email: 'm2@example.com', old_email: 'member@example.com' }, 'member', 'member')] },
  { action: 'POST /user/apptoken', status: 200, run: () => t.api('POST', '/user/apptoken', { as: member, body: { title: 'ci' } }),
    entries: [e('create_app_specific_token', ['app_specific_token_title', 'app_specific_token'], { app_specific_token_title: 'ci' }, 'member', 'member')] },
  { action: 'POST repository notification', status: 201, run: async () => {
    const response = await t.api('POST', '/repository/acme/web/notification/', { as: owner, body: { event: 'repo_push', method: 'webhook', config: { url: 'http://127.0.0.1:9/hook' }, eventConfig: {}, title: 'ci' } });
    state.notification = response.json().uuid as string;
    return response;
  }, entries: [e('add_repo_notification', repo(['notification_id', 'event', 'method']), { event: 'repo_push', method: 'webhook' })] },
  { action: 'POST repository notification (reset)', status: 204, run: () => t.api('POST', `/repository/acme/web/notification/${state.notification}`, { as: owner }),
    entries: [e('reset_repo_notification', repo(['notification_id', 'event', 'method']))] },
  { action: 'DELETE repository notification', status: 204, run: () => t.api('DELETE', `/repository/acme/web/notification/${state.notification}`, { as: owner }),
    entries: [e('delete_repo_notification', repo(['notification_id', 'event', 'method']))] },
  { action: 'POST organization notification', status: 201, run: async () => {
    const response = await t.api('POST', '/organization/acme/notifications', { as: owner, body: { event: 'quota_warning', method: 'webhook', config: { url: 'http://127.0.0.1:9/quota' }, eventConfig: {}, title: 'q' } });
    state.nsNotification = response.json().uuid as string;
    return response;
  }, entries: [e('create_namespace_notification', ['namespace', 'notification_id', 'event', 'method'], { event: 'quota_warning' })] },
  { action: 'POST organization notification (reset)', status: 204, run: () => t.api('POST', `/organization/acme/notifications/${state.nsNotification}`, { as: owner }),
    entries: [e('reset_namespace_notification', ['namespace', 'notification_id', 'event', 'method'])] },
  { action: 'DELETE organization notification', status: 204, run: () => t.api('DELETE', `/organization/acme/notifications/${state.nsNotification}`, { as: owner }),
    entries: [e('delete_namespace_notification', ['namespace', 'notification_id', 'event', 'method'])] },
  { action: 'DELETE tag (API)', status: 204, run: () => t.api('DELETE', '/repository/acme/web/tag/latest', { as: owner }),
    entries: [e('delete_tag', repo(['username', 'tag']), { tag: 'latest', username: 'owner' })] },
  { action: 'POST tag restore', status: 200, run: () => t.api('POST', '/repository/acme/web/tag/latest/restore', { as: owner, body: { manifest_digest: state.digest } }),
    entries: [e('revert_tag', repo(['username', 'tag', 'manifest_digest']), { tag: 'latest' })] },
  { action: 'DELETE /v2/.../manifests/<digest>', status: 202, run: async () => {
    const m = await v2.pushImage('acme/web', 'old', Buffer.from('{"k":2}'), [randomBytes(16)]);
    await t.db.query(`DELETE FROM logentry WHERE kind = 'push_repo' AND metadata_json->>'tag' = 'old'`);
    return v2.request('DELETE', `/v2/acme/web/manifests/${m.digest}`);
  }, entries: [e('delete_tag', repo(['tag', 'digest', 'username']), { tag: 'old' })] },
  { action: 'POST mirror', status: 201, run: () => t.api('POST', '/repository/acme/web/mirror', { as: owner, body: {
    external_reference: 'quay.io/redhat/quay', sync_interval: 5000, sync_start_date: '2020-01-02T06:30:00Z', robot_username: 'acme+mirror',
    root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['latest'] },
  } }), entries: [e('repo_mirror_config_changed', repo(['changed', 'to']), { changed: 'external_reference', to: 'quay.io/redhat/quay' })] },
  { action: 'PUT mirror (is_enabled)', status: 201, run: () => t.api('PUT', '/repository/acme/web/mirror', { as: owner, body: { is_enabled: false } }),
    entries: [e('repo_mirror_config_changed', repo(['changed', 'to']), { changed: 'is_enabled', to: false })] },
  { action: 'POST mirror sync-now', status: 204, run: async () => {
    await t.api('PUT', '/repository/acme/web/mirror', { as: owner, body: { is_enabled: true } });
    await t.db.query(`DELETE FROM logentry WHERE kind = 'repo_mirror_config_changed' AND metadata_json->>'to' = 'true'`);
    return t.api('POST', '/repository/acme/web/mirror/sync-now', { as: owner });
  }, entries: [e('repo_mirror_config_changed', repo(['changed', 'to']), { changed: 'sync_status', to: 'SYNC_NOW' })] },
  { action: 'PUT changestate', status: 200, run: () => t.api('PUT', '/repository/acme/web/changestate', { as: owner, body: { state: 'READ_ONLY' } }),
    entries: [e('change_repo_state', repo(['state_changed']), { state_changed: 'READ_ONLY' })] },
  { action: 'POST organization quota (superuser)', status: 201, run: () => t.api('POST', '/organization/acme/quota', { as: root, body: { limit_bytes: 1_000_000 } }),
    entries: [e('org_create_quota', ['limit_bytes', 'limit'], undefined, 'acme', 'root')] },
  { action: 'POST exportlogs', status: 200, run: () => t.api('POST', '/organization/acme/exportlogs', { as: owner, body: { callback_email: 'ops@acme.example' } }),
    entries: [e('export_logs_success', ['date/time', 'export_id', 'message', 'url', 'email'], { message: 'queued for export', email: 'ops@acme.example' })] },
  { action: 'POST exportlogs (refused)', status: 400, run: () => t.api('POST', '/organization/acme/exportlogs', { as: owner, body: { callback_url: 'http://169.254.169.254/x' } }),
    entries: [e('export_logs_failure', ['date/time', 'error', 'url', 'email'])] },
  { action: 'DELETE repository', status: 204, run: () => t.api('DELETE', '/repository/acme/web', { as: owner }),
    entries: [e('delete_repo', repo(), { repo: 'web', namespace: 'acme' })] },
  { action: 'DELETE organization', status: 204, run: () => t.api('DELETE', '/organization/gone', { as: owner }),
    entries: [e('org_delete', ['namespace'], { namespace: 'gone' }, 'gone')] },
  { action: 'DELETE /user/', status: 204, run: () => t.api('DELETE', '/user/', { as: leaver }),
    entries: [e('user_delete', ['username'], { username: 'leaver' }, 'leaver', 'leaver')] },
];

interface Entry { kind: string; account: string | null; performer: string | null; metadata: Record<string, unknown> }

async function entriesAfter(id: number): Promise<Entry[]> {
  // Accounts by id: a deleted namespace is renamed, its original name kept by its marker.
  const { rows } = await t.db.query<Entry>(
    `SELECT l.kind, COALESCE(d.original_username, a.username) AS account, COALESCE(dp.original_username, p.username) AS performer, l.metadata_json AS metadata
     FROM logentry l LEFT JOIN namespace a ON a.id = l.account_id LEFT JOIN deletednamespace d ON d.namespace_id = l.account_id
     LEFT JOIN namespace p ON p.id = l.performer_id LEFT JOIN deletednamespace dp ON dp.namespace_id = l.performer_id
     WHERE l.id > $1 ORDER BY l.id`, [id]);
  return rows;
}

describe('action logs of every front-end action', () => {
  let before = 0;
  beforeAll(async () => {
    // The token for a push creates acme/web (create_repo, as Quay does on a first push).
    v2 = new V2Client(t.app, await t.tokenFor('owner', PASSWORD, ['repository:acme/web:pull,push,delete']));
  });

  it.each(ROWS.map((row) => [row.action, row] as const))('%s', async (_action, row) => {
    const { rows: [max] } = await t.db.query<{ id: number }>(`SELECT COALESCE(max(id), 0)::int AS id FROM logentry`);
    before = max!.id;
    const response = await row.run();
    expect(response.statusCode).toBe(row.status);
    const entries = row.entries.length === 0 ? await entriesAfter(before)
      : await waitFor(async () => { const found = await entriesAfter(before); return found.length >= row.entries.length ? found : undefined; }, 5000);
    expect(entries.map((entry) => entry.kind)).toEqual(row.entries.map((entry) => entry.kind));
    entries.forEach((entry, i) => {
      const expected = row.entries[i]!;
      expect({ account: entry.account, performer: entry.performer }).toEqual({ account: expected.account, performer: expected.performer });
      expect(Object.keys(entry.metadata)).toEqual(expect.arrayContaining(expected.keys));
      if (expected.values) expect(entry.metadata).toMatchObject(expected.values);
    });
  });
});
