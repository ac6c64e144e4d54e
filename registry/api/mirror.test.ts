/**
 * Quay's mirror API (reference §1.10, tests §6.3) and repository states: shapes, statuses,
 * errors, permissions for the robot, encrypted credentials, sync-now and cancel, and what the
 * /v2 front end allows in each state (only the mirror's robot pushes to a MIRROR repository).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FieldEncrypter } from '../../shared/db/encrypted-field.ts';
import { RepoMirrorStatus } from '../../shared/db/mirrors.ts';
import { findRepository, RepositoryState } from '../../shared/db/repositories.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const SECRET = 'api-test-secret';
let t: TestRegistry;
let off: TestRegistry;
const admin: [string, string] = ['admin', 'adminpass'];
const writer: [string, string] = ['writer', 'writerpass'];
let robotToken: string;

const VALID = {
  external_reference: 'quay.io/redhat/quay', sync_interval: 5000, sync_start_date: '2020-01-02T06:30:00Z',
  root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['latest', '3.*'] }, robot_username: 'acme+mirror',
  skopeo_timeout_interval: 300, external_registry_username: 'fakeUsername', external_registry_password: 'fakePassword',
  external_registry_config: { verify_tls: true, unsigned_images: false, proxy: { http_proxy: 'http://p:3128', https_proxy: null, no_proxy: 'internal' } },
};

function expectError(response: { statusCode: number; json(): Record<string, unknown> }, status: number, message?: string | RegExp): void {
  expect(response.statusCode).toBe(status);
  if (message) expect(response.json().error_message).toMatch(message);
}

async function newRepo(name: string): Promise<string> {
  await t.createRepository(`acme/${name}`);
  return `/repository/acme/${name}/mirror`;
}

beforeAll(async () => {
  [t, off] = await Promise.all([
    startTestRegistry({ label: 'mirrorapi', config: { FEATURE_REPO_MIRROR: true, DATABASE_SECRET_KEY: SECRET } }),
    startTestRegistry({ label: 'mirrorapioff' }),
  ]);
  for (const reg of [t, off]) {
    await reg.createUser('admin', 'adminpass');
    await reg.createUser('writer', 'writerpass');
    await reg.createOrganization('acme', 'admin');
  }
  robotToken = (await t.createRobot('acme', 'mirror')).token;
  await t.createRobot('acme', 'other');
  await off.createRepository('acme/plain');
});
afterAll(async () => Promise.all([t?.close(), off?.close()]));

describe('POST/GET /api/v1/repository/{ns}/{repo}/mirror', () => {
  it('creates (201, empty body), flips the repository to MIRROR and echoes the config without the password', async () => {
    const url = await newRepo('quay');
    const created = await t.api('POST', url, { as: admin, body: VALID });
    expect(created.statusCode).toBe(201);
    expect(created.body).toBe('');
    expect((await findRepository(t.db, 'acme', 'quay'))!.state).toBe(RepositoryState.MIRROR);
    const got = await t.api('GET', url, { as: admin });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual({
      is_enabled: true, mirror_type: 'PULL', external_reference: 'quay.io/redhat/quay', external_registry_username: 'fakeUsername',
      external_registry_config: VALID.external_registry_config, sync_interval: 5000, sync_start_date: '2020-01-02T06:30:00Z',
      sync_expiration_date: null, sync_retries_remaining: 3, sync_status: 'NEVER_RUN',
      root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['latest', '3.*'] }, robot_username: 'acme+mirror', skopeo_timeout_interval: 300,
      architecture_filter: [],
    });
    const { rows } = await t.db.query(`SELECT external_registry_username AS u, external_registry_password AS p FROM repomirrorconfig`);
    expect(rows[0].p).toMatch(/^v0\$\$/);
    expect(new FieldEncrypter(SECRET).decrypt(rows[0].p)).toBe('fakePassword');
    expectError(await t.api('POST', url, { as: admin, body: VALID }), 409, /Mirror configuration already exits for repository acme\/quay/);
  });

  it.each([['none', 'write'], ['read', 'write'], ['write', 'write'], ['admin', 'admin']])('grants the robot write (existing %s -> %s)', async (existing, expected) => {
    const url = await newRepo(`perm-${existing}`);
    if (existing !== 'none') await t.grant(`acme/perm-${existing}`, { user: 'acme+mirror' }, existing as 'read');
    expect((await t.api('POST', url, { as: admin, body: VALID })).statusCode).toBe(201);
    const { rows } = await t.db.query(
      `SELECT p.role FROM repositorypermission p JOIN repository r ON r.id = p.repository_id JOIN namespace n ON n.id = p.user_id WHERE r.name = $1 AND n.username = 'acme+mirror'`,
      [`perm-${existing}`]);
    expect(rows[0].role).toBe(expected);
  });

  it('refuses bad input with Quay statuses and messages, never 500', async () => {
    const url = await newRepo('bad');
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ sync_start_date: 'not-a-date' }, /^Incorrect DateTime format for sync_start_date\.$/],
      [{ sync_start_date: '2020-01-01T00:00:00.00Z' }, /Incorrect DateTime format/],
      [{ sync_start_date: '2020-02-30T00:00:00Z' }, /Incorrect DateTime format/],
      [{ skopeo_timeout_interval: 60 }, /at least 300/],
      [{ sync_interval: -5 }, /sync_interval/],
      [{ external_reference: 'example.com' }, /must name a repository/],
      [{ external_reference: 'https://quay.io/a' }, /scheme/],
      [{ external_reference: '169.254.169.254/latest/meta-data' }, /^The provided registry location is not allowed$/],
      [{ external_reference: '10.0.0.1/a' }, /not allowed/],
      [{ root_rule: { rule_kind: 'tag_glob_csv', rule_value: [] } }, /non-empty list/],
      [{ root_rule: { rule_kind: 'tag_glob_csv', rule_value: "['a','b']" } }, /non-empty list/],
      [{ root_rule: { rule_kind: 'regex', rule_value: ['v(['] } }, /Invalid regular expression/],
      [{ root_rule: { rule_kind: 'semver', rule_value: ['1'] } }, /Unsupported rule_kind/],
      [{ robot_username: 'other+robot' }, /namespace/],
      [{ robot_username: 'acme+ghost' }, /does not exist/],
      [{ robot_username: 'norobot' }, /Invalid robot/],
      [{ architecture_filter: ['amd64'] }, /FEATURE_SPARSE_INDEX/],
      [{ architecture_filter: 'amd64' }, /architecture_filter/],
      [{ external_registry_config: { verify_tls: null } }, /verify_tls/],
      [{ external_registry_username: null, external_registry_password: 'x' }, /without also specifying a username/],
    ];
    for (const [change, message] of cases) expectError(await t.api('POST', url, { as: admin, body: { ...VALID, ...change } }), 400, message);
    expectError(await t.api('POST', url, { as: admin, body: '{oops' }), 400);
    expect((await t.api('GET', url, { as: admin })).statusCode).toBe(404);
  });

  it('answers 404 for a missing config or repository, 403 to non-admins, 404 with the feature off', async () => {
    expect((await t.api('GET', await newRepo('noconfig'), { as: admin })).statusCode).toBe(404);
    expect((await t.api('GET', '/repository/acme/nope/mirror', { as: admin })).statusCode).toBe(404);
    await t.grant('acme/quay', { user: 'writer' }, 'write');
    expect((await t.api('GET', '/repository/acme/quay/mirror', { as: writer })).statusCode).toBe(403);
    expect((await t.api('GET', '/repository/acme/quay/mirror')).statusCode).toBe(401);
    expect((await off.api('POST', '/repository/acme/plain/mirror', { as: admin, body: VALID })).statusCode).toBe(404);
  });

  it('shows "(invalid. please re-enter)" for a username another key encrypted', async () => {
    const url = await newRepo('rekeyed');
    await t.api('POST', url, { as: admin, body: VALID });
    await t.db.query(`UPDATE repomirrorconfig c SET external_registry_username = $1 FROM repository r WHERE r.id = c.repository_id AND r.name = 'rekeyed'`,
      [new FieldEncrypter('another key').encrypt('someone')]);
    expect((await t.api('GET', url, { as: admin })).json().external_registry_username).toBe('(invalid. please re-enter)');
  });
});

describe('PUT /api/v1/repository/{ns}/{repo}/mirror', () => {
  let url: string;
  beforeAll(async () => {
    url = await newRepo('change');
    await t.api('POST', url, { as: admin, body: VALID });
  });

  it.each([
    ['is_enabled', false, 201], ['external_reference', 'quay.io/other/repo', 201], ['external_reference', 'example.com', 400],
    ['sync_interval', 3600, 201], ['sync_interval', -5, 400], ['sync_start_date', '2021-05-06T07:08:09Z', 201],
    ['sync_start_date', '2020-01-01T00:00:00.00Z', 400], ['skopeo_timeout_interval', 600, 201], ['skopeo_timeout_interval', 60, 400],
    ['robot_username', 'acme+other', 201], ['robot_username', 'acme+ghost', 400],
    ['root_rule', { rule_kind: 'tag_glob_csv', rule_value: ['v1*'] }, 201], ['root_rule', { rule_kind: 'tag_glob_csv', rule_value: [] }, 400],
    ['root_rule', { rule_kind: 'regex', rule_value: ['v[0-9]+'] }, 201], ['architecture_filter', 'amd64', 400],
    ['external_registry_config', { verify_tls: false }, 201], ['external_registry_config', { verify_tls: null }, 400],
    ['external_registry_config', { proxy: { https_proxy: 'proxy; rm -rf /' } }, 201],
  ])('%s = %j -> %i, and GET shows whether it changed', async (key, value, status) => {
    const before = (await t.api('GET', url, { as: admin })).json();
    const response = await t.api('PUT', url, { as: admin, body: { [key]: value } });
    expect(response.statusCode).toBe(status);
    const after = (await t.api('GET', url, { as: admin })).json();
    if (status !== 201) expect(after).toEqual(before);
    else expect(after).not.toEqual(before);
  });

  it('merges proxy settings and logs each change', async () => {
    const got = (await t.api('GET', url, { as: admin })).json();
    expect(got.external_registry_config.proxy).toEqual({ http_proxy: 'http://p:3128', https_proxy: 'proxy; rm -rf /', no_proxy: 'internal' });
    const { rows } = await t.db.query(`SELECT metadata_json FROM logentry WHERE kind = 'repo_mirror_config_changed' ORDER BY id`);
    expect(rows.map((r) => r.metadata_json.changed)).toEqual(expect.arrayContaining(['is_enabled', 'sync_interval', 'mirror_rule', 'robot_username', 'https_proxy']));
  });

  it.each([
    [{ external_registry_password: 'pw' }, 400],
    [{ external_registry_username: null, external_registry_password: 'pw' }, 400],
    [{ external_registry_username: 'user' }, 201],
    [{ external_registry_username: 'user', external_registry_password: 'pw' }, 201],
    [{ external_registry_username: null, external_registry_password: null }, 201],
    [{ external_registry_username: '', external_registry_password: '' }, 201],
  ])('credentials %j -> %i', async (body, status) => {
    expect((await t.api('PUT', url, { as: admin, body })).statusCode).toBe(status);
  });

  it('an edit never touches a running sync\'s claim token', async () => {
    await t.db.query(`UPDATE repomirrorconfig c SET sync_status = 2, sync_claim_id = gen_random_uuid() FROM repository r WHERE r.id = c.repository_id AND r.name = 'change'`);
    const { rows: before } = await t.db.query(`SELECT sync_claim_id, sync_transaction_id FROM repomirrorconfig c JOIN repository r ON r.id = c.repository_id WHERE r.name = 'change'`);
    expect((await t.api('PUT', url, { as: admin, body: { sync_interval: 60 } })).statusCode).toBe(201);
    const { rows: after } = await t.db.query(`SELECT sync_claim_id, sync_transaction_id FROM repomirrorconfig c JOIN repository r ON r.id = c.repository_id WHERE r.name = 'change'`);
    expect(after[0].sync_claim_id).toBe(before[0].sync_claim_id);
    expect(after[0].sync_transaction_id).not.toBe(before[0].sync_transaction_id);
    await t.db.query(`UPDATE repomirrorconfig c SET sync_status = 0, sync_claim_id = NULL FROM repository r WHERE r.id = c.repository_id AND r.name = 'change'`);
  });
});

describe('sync-now and sync-cancel', () => {
  it('sync-now: 204, SYNC_NOW, a repomirror job in the outbox; 404 while SYNCING', async () => {
    const url = await newRepo('now');
    await t.api('POST', url, { as: admin, body: { ...VALID, is_enabled: false } });
    expect((await t.api('POST', `${url}/sync-now`, { as: admin })).statusCode).toBe(204);
    const got = (await t.api('GET', url, { as: admin })).json();
    expect(got).toMatchObject({ sync_status: 'SYNC_NOW', sync_retries_remaining: 3 });
    const { rows } = await t.db.query(`SELECT payload FROM outbox WHERE queue_name = 'repomirror'`);
    expect(rows.some((r) => r.payload.trigger === 'sync_now')).toBe(true);
    await t.db.query(`UPDATE repomirrorconfig SET sync_status = ${RepoMirrorStatus.SYNCING} WHERE sync_status = ${RepoMirrorStatus.SYNC_NOW}`);
    expect((await t.api('POST', `${url}/sync-now`, { as: admin })).statusCode).toBe(404);
  });

  it('cancel: 204 from SYNCING or SYNC_NOW (CANCEL, 0 retries); 404 otherwise', async () => {
    const url = '/repository/acme/now/mirror';
    expect((await t.api('POST', `${url}/sync-cancel`, { as: admin })).statusCode).toBe(204);
    const got = (await t.api('GET', url, { as: admin })).json();
    expect(got).toMatchObject({ sync_status: 'CANCEL', sync_retries_remaining: 0, sync_expiration_date: null });
    expect((await t.api('POST', `${url}/sync-cancel`, { as: admin })).statusCode).toBe(404);
    expect((await t.api('POST', `${url}/sync-now`, { as: admin })).statusCode).toBe(204);
    expect((await t.api('GET', url, { as: admin })).json()).toMatchObject({ sync_status: 'SYNC_NOW', sync_retries_remaining: 1 });
    expect((await t.api('POST', '/repository/acme/noconfig/mirror/sync-now', { as: admin })).statusCode).toBe(404);
  });
});

describe('PUT /api/v1/repository/{ns}/{repo}/changestate and what /v2 allows', () => {
  async function pushStatus(repo: string, user: string, password: string): Promise<number> {
    const token = await t.tokenFor(user, password, [`repository:acme/${repo}:push,pull`]);
    const response = await t.app.inject({ method: 'POST', url: `/v2/acme/${repo}/blobs/uploads/`, headers: { authorization: `Bearer ${token}` } });
    return response.statusCode;
  }
  async function pullStatus(repo: string): Promise<number> {
    const token = await t.tokenFor('writer', 'writerpass', [`repository:acme/${repo}:pull`]);
    return (await t.app.inject({ method: 'GET', url: `/v2/acme/${repo}/tags/list`, headers: { authorization: `Bearer ${token}` } })).statusCode;
  }

  it('changes states with Quay\'s errors', async () => {
    await t.createRepository('acme/states');
    await t.grant('acme/states', { user: 'writer' }, 'write');
    const url = '/repository/acme/states/changestate';
    expect((await t.api('PUT', url, { as: admin, body: { state: 'READ_ONLY' } })).json()).toEqual({ success: true });
    expect((await findRepository(t.db, 'acme', 'states'))!.state).toBe(RepositoryState.READ_ONLY);
    expectError(await t.api('PUT', url, { as: admin, body: { state: 'BOGUS' } }), 400, /^BOGUS is not a valid Repository state\.$/);
    expectError(await t.api('PUT', url, { as: admin, body: { state: 'MARKED_FOR_DELETION' } }), 400, /not a valid Repository state/);
    expectError(await t.api('PUT', url, { as: admin, body: {} }), 400);
    expect((await t.api('PUT', url, { as: writer, body: { state: 'NORMAL' } })).statusCode).toBe(403);
    await off.createRepository('acme/stateoff');
    expectError(await off.api('PUT', '/repository/acme/stateoff/changestate', { as: admin, body: { state: 'MIRROR' } }), 400, /^Unknown Repository State: MIRROR$/);
    const { rows } = await t.db.query(`SELECT metadata_json FROM logentry WHERE kind = 'change_repo_state' ORDER BY id`);
    expect(rows[0].metadata_json).toEqual({ namespace: 'acme', repo: 'states', state_changed: 'READ_ONLY' });
  });

  it('READ_ONLY refuses pushes; MIRROR lets only the mirror robot push; pulls work in every state', async () => {
    expect(await pushStatus('states', 'writer', 'writerpass')).toBe(403);
    expect(await pullStatus('states')).toBe(200);
    await t.api('PUT', '/repository/acme/states/changestate', { as: admin, body: { state: 'NORMAL' } });
    expect(await pushStatus('states', 'writer', 'writerpass')).toBe(202);
    expect((await t.api('POST', '/repository/acme/states/mirror', { as: admin, body: VALID })).statusCode).toBe(201);
    expect(await pushStatus('states', 'writer', 'writerpass')).toBe(403);
    expect(await pushStatus('states', 'acme+mirror', robotToken)).toBe(202);
    expect(await pullStatus('states')).toBe(200);
  });
});
