import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { findNamespace } from '../../shared/db/namespaces.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const PASSWORD = 'a long enough password';
const owner: [string, string] = ['owner', PASSWORD];
const member: [string, string] = ['member', PASSWORD];
const root: [string, string] = ['root', PASSWORD];
let t: TestRegistry;

beforeAll(async () => {
  t = await startTestRegistry({ label: 'apiaccounts' });
  await t.createUser('owner', PASSWORD);
  await t.createUser('member', PASSWORD);
  await t.createUser('root', PASSWORD, { superuser: true });
});
afterAll(async () => t?.close());

async function logKinds(): Promise<string[]> {
  const { rows } = await t.db.query<{ kind: string }>(`SELECT kind FROM logentry ORDER BY id`);
  return rows.map((r) => r.kind);
}

describe('organizations, teams, robots, permissions', () => {
  it('creates an organization owned by the caller', async () => {
    const response = await t.api('POST', '/organization/', { as: owner, body: { name: 'acme', email: 'acme@example.com' } });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toBe('Created');
    const view = await t.api('GET', '/organization/acme', { as: owner });
    expect(view.json()).toMatchObject({ name: 'acme', is_admin: true, ordered_teams: ['owners'], tag_expiration_s: 1209600 });
    expect((await t.api('POST', '/organization/', { as: owner, body: { name: 'acme' } })).json().error_message).toBe('A user or organization with this name already exists');
    expect((await t.api('POST', '/organization/', { as: owner, body: { name: 'A!' } })).statusCode).toBe(400);
    expect((await t.api('POST', '/organization/', { as: owner, body: { name: 'x2', email: 'not-an-email' } })).statusCode).toBe(400);
    expect((await t.api('GET', '/organization/acme', { as: member })).statusCode).toBe(403);
    expect((await t.api('GET', '/organization/nope', { as: member })).statusCode).toBe(404);
  });

  it('creates teams and adds members; creators may then create repositories', async () => {
    const team = await t.api('PUT', '/organization/acme/team/builders', { as: owner, body: { role: 'creator', description: 'CI' } });
    expect(team.json()).toMatchObject({ name: 'builders', role: 'creator', member_count: 0 });
    expect((await t.api('PUT', '/organization/acme/team/builders', { as: owner, body: { role: 'boss' } })).statusCode).toBe(400);
    expect((await t.api('PUT', '/organization/acme/team/builders', { as: member, body: { role: 'admin' } })).statusCode).toBe(403);
    const added = await t.api('PUT', '/organization/acme/team/builders/members/member', { as: owner });
    expect(added.json()).toMatchObject({ name: 'member', is_robot: false });
    expect((await t.api('PUT', '/organization/acme/team/nope/members/member', { as: owner })).statusCode).toBe(404);
    expect((await t.api('PUT', '/organization/acme/team/builders/members/ghost', { as: owner })).statusCode).toBe(404);
    const created = await t.api('POST', '/repository', { as: member, body: { namespace: 'acme', repository: 'tool', visibility: 'private' } });
    expect(created.statusCode).toBe(201);
    expect(await logKinds()).toEqual(expect.arrayContaining(['org_create', 'org_create_team', 'org_add_team_member', 'create_repo']));
  });

  it('creates robots with a token shown once and stored hashed', async () => {
    const response = await t.api('PUT', '/organization/acme/robots/deployer', { as: owner, body: { description: 'deploys' } });
    expect(response.statusCode).toBe(201);
    const robot = response.json();
    expect(robot).toMatchObject({ name: 'acme+deployer', description: 'deploys', token: expect.stringMatching(/^[A-Z0-9]{64}$/) });
    const { rows } = await t.db.query(`SELECT token_hash FROM robotaccounttoken`);
    expect(rows[0].token_hash).toMatch(/^sha256\$[0-9a-f]{64}$/);
    expect(rows[0].token_hash).not.toContain(robot.token);
    expect((await t.api('PUT', '/organization/acme/robots/deployer', { as: owner })).json().error_message).toBe('Existing robot with name: acme+deployer');
    expect((await t.api('PUT', '/organization/acme/robots/Bad-Name', { as: owner })).statusCode).toBe(400);
    const mine = await t.api('PUT', '/user/robots/helper', { as: member });
    expect(mine.json().name).toBe('member+helper');

    expect((await t.api('PUT', '/repository/acme/tool/permissions/user/acme+deployer', { as: owner, body: { role: 'write' } })).json())
      .toMatchObject({ role: 'write', name: 'acme+deployer', is_robot: true });
    const token = await t.tokenFor('acme+deployer', robot.token, ['repository:acme/tool:pull,push']);
    expect(decodeJwt(token).access).toEqual([{ type: 'repository', name: 'acme/tool', actions: ['pull', 'push'] }]);
    expect((await t.api('PUT', '/repository/acme/tool/permissions/user/member+helper', { as: owner, body: { role: 'read' } })).statusCode).toBe(400);
  });

  it('grants and revokes user and team permissions', async () => {
    await t.createUser('viewer', PASSWORD);
    expect((await t.api('PUT', '/repository/acme/tool/permissions/user/viewer', { as: owner, body: { role: 'reader' } })).statusCode).toBe(400);
    expect((await t.api('PUT', '/repository/acme/tool/permissions/user/viewer', { as: ['viewer', PASSWORD], body: { role: 'admin' } })).statusCode).toBe(403);
    expect((await t.api('PUT', '/repository/acme/tool/permissions/user/viewer', { as: owner, body: { role: 'read' } })).statusCode).toBe(200);
    expect((await t.api('GET', '/repository/acme/tool', { as: ['viewer', PASSWORD] })).statusCode).toBe(200);
    expect((await t.api('DELETE', '/repository/acme/tool/permissions/user/viewer', { as: owner })).statusCode).toBe(204);
    expect((await t.api('GET', '/repository/acme/tool', { as: ['viewer', PASSWORD] })).statusCode).toBe(403);
    expect((await t.api('DELETE', '/repository/acme/tool/permissions/user/viewer', { as: owner })).statusCode).toBe(400);

    await t.api('PUT', '/organization/acme/team/readers', { as: owner, body: { role: 'member' } });
    await t.api('PUT', '/organization/acme/team/readers/members/viewer', { as: owner });
    expect((await t.api('PUT', '/repository/acme/tool/permissions/team/readers', { as: owner, body: { role: 'read' } })).json()).toMatchObject({ role: 'read', name: 'readers' });
    expect((await t.api('GET', '/repository/acme/tool', { as: ['viewer', PASSWORD] })).statusCode).toBe(200);
    expect((await t.api('PUT', '/repository/acme/tool/permissions/team/ghosts', { as: owner, body: { role: 'read' } })).statusCode).toBe(404);
    expect((await t.api('DELETE', '/repository/acme/tool/permissions/team/readers', { as: owner })).statusCode).toBe(204);
    expect(await logKinds()).toEqual(expect.arrayContaining(['change_repo_permission', 'delete_repo_permission']));
  });
});

describe('time machine settings', () => {
  it('accepts only TAG_EXPIRATION_OPTIONS, for the user and for organizations', async () => {
    const bad = await t.api('PUT', '/user/', { as: member, body: { tag_expiration_s: 123 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error_message).toBe('Invalid tag expiration option');
    expect((await t.api('PUT', '/user/', { as: member, body: { tag_expiration_s: '1d' } })).statusCode).toBe(400);
    const ok = await t.api('PUT', '/user/', { as: member, body: { tag_expiration_s: 86_400 } });
    expect(ok.json()).toMatchObject({ username: 'member', tag_expiration_s: 86_400 });
    expect((await t.api('PUT', '/organization/acme', { as: member, body: { tag_expiration_s: 0 } })).statusCode).toBe(403);
    expect((await t.api('PUT', '/organization/acme', { as: owner, body: { tag_expiration_s: 604_800 } })).json()).toMatchObject({ tag_expiration_s: 604_800 });
    expect((await findNamespace(t.db, 'acme'))?.removed_tag_expiration_s).toBe(604_800);
    // Quay's kinds: user_change_tag_expiration {tag_expiration}, org_change_tag_expiration {tag_expiration, namespace}.
    const { rows } = await t.db.query(`SELECT kind, metadata_json FROM logentry WHERE kind LIKE '%change_tag_expiration' ORDER BY id`);
    expect(rows).toEqual([
      { kind: 'user_change_tag_expiration', metadata_json: { tag_expiration: 86_400 } },
      { kind: 'org_change_tag_expiration', metadata_json: { tag_expiration: 604_800, namespace: 'acme' } },
    ]);
  });
});

describe('app tokens and superuser user management', () => {
  it('issues app tokens usable as bearer on the API and as $app on /v2/auth', async () => {
    const response = await t.api('POST', '/user/apptoken', { as: member, body: { title: 'laptop' } });
    const token = response.json().token.token_code as string;
    expect(token).toHaveLength(120);
    expect((await t.api('GET', '/user/', { bearer: token })).json().username).toBe('member');
    expect((await t.api('GET', '/user/', { bearer: 'X'.repeat(120) })).statusCode).toBe(401);
    expect((await t.api('POST', '/user/apptoken', { as: member, body: {} })).statusCode).toBe(400);
    expect(decodeJwt(await t.tokenFor('$app', token, [])).sub).toBe('member');
  });

  it('lets only superusers create and delete users', async () => {
    expect((await t.api('POST', '/superuser/users/', { as: owner, body: { username: 'newbie' } })).statusCode).toBe(403);
    const created = await t.api('POST', '/superuser/users/', { as: root, body: { username: 'newbie', email: 'n@example.com' } });
    expect(created.json()).toMatchObject({ username: 'newbie', email: 'n@example.com', password: expect.any(String) });
    expect((await t.api('GET', '/user/', { as: ['newbie', created.json().password] })).statusCode).toBe(200);
    expect((await t.api('POST', '/superuser/users/', { as: root, body: { username: 'newbie' } })).statusCode).toBe(400);
    expect((await t.api('POST', '/superuser/users/', { as: root, body: { username: 'Not Valid' } })).statusCode).toBe(400);
    expect((await t.api('DELETE', '/superuser/users/root', { as: root })).statusCode).toBe(403);
    expect((await t.api('DELETE', '/superuser/users/nobody', { as: root })).statusCode).toBe(404);
    expect((await t.api('DELETE', '/superuser/users/newbie', { as: root })).statusCode).toBe(204);
    expect((await t.api('GET', '/user/', { as: ['newbie', created.json().password] })).statusCode).toBe(401);
  });
});

describe('two-step namespace delete', () => {
  it('refuses to delete the sole admin of an organization', async () => {
    const response = await t.api('DELETE', '/user/', { as: owner });
    expect(response.statusCode).toBe(400);
    expect(response.json().error_message).toContain('only admin for organizations: acme');
  });

  it('hides the organization, writes the marker and the outbox row, and keeps the name reserved', async () => {
    const org = (await findNamespace(t.db, 'acme'))!;
    expect((await t.api('DELETE', '/organization/acme', { as: member })).statusCode).toBe(403);
    expect((await t.api('DELETE', '/organization/acme', { as: owner })).statusCode).toBe(204);
    const { rows: [row] } = await t.db.query(`SELECT username, deleted, enabled FROM namespace WHERE id = $1`, [org.id]);
    expect(row).toMatchObject({ deleted: true, enabled: false });
    expect(row.username).not.toBe('acme');
    const { rows: robots } = await t.db.query(`SELECT username, enabled FROM namespace WHERE robot AND username LIKE $1`, [`${row.username}+%`]);
    expect(robots).toEqual([{ username: `${row.username}+deployer`, enabled: false }]);
    const { rows: [marker] } = await t.db.query(`SELECT id, original_username, queue_id FROM deletednamespace WHERE namespace_id = $1`, [org.id]);
    expect(marker).toMatchObject({ original_username: 'acme', queue_id: `namespacegc/${org.id}` });
    const { rows: outbox } = await t.db.query(`SELECT payload FROM outbox WHERE queue_name = 'namespacegc' AND payload->>'namespaceId' = $1`, [String(org.id)]);
    expect(outbox.map((r) => r.payload)).toEqual([{ v: 1, namespaceId: org.id, markerId: marker.id, originalUsername: 'acme' }]);
    expect(await logKinds()).toContain('org_delete');
    // Hidden from every lookup, and the robot can no longer sign in.
    expect((await t.api('GET', '/repository/acme/tool', { as: owner })).statusCode).toBe(403);
    const { statusCode } = await t.app.inject({ method: 'GET', url: '/v2/auth?scope=repository:acme/tool:pull', headers: { authorization: `Basic ${Buffer.from('acme+deployer:x').toString('base64')}` } });
    expect(statusCode).toBe(401);
    // The name stays reserved while the marker exists, and is free once the purge removed it.
    expect((await t.api('POST', '/organization/', { as: owner, body: { name: 'acme' } })).statusCode).toBe(400);
    await t.db.query(`DELETE FROM deletednamespace WHERE id = $1`, [marker.id]);
    expect((await t.api('POST', '/organization/', { as: owner, body: { name: 'acme' } })).statusCode).toBe(201);
  });

  it('deletes the caller own account', async () => {
    expect((await t.api('DELETE', '/user/', { as: ['viewer', PASSWORD] })).statusCode).toBe(204);
    expect((await t.api('GET', '/user/', { as: ['viewer', PASSWORD] })).statusCode).toBe(401);
    expect((await t.api('POST', '/superuser/users/', { as: root, body: { username: 'viewer' } })).statusCode).toBe(400);
  });
});

describe('read-only registry', () => {
  it('refuses API writes with 503 read_only and keeps reads', async () => {
    const ro = await startTestRegistry({ label: 'apireadonly', config: { REGISTRY_STATE: 'readonly' } });
    try {
      await ro.createUser('someone', PASSWORD);
      const response = await ro.api('POST', '/repository', { as: ['someone', PASSWORD], body: { repository: 'x', visibility: 'private' } });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({ error_type: 'read_only', status: 503 });
      expect((await ro.api('DELETE', '/organization/whatever', { as: ['someone', PASSWORD] })).statusCode).toBe(503);
      expect((await ro.api('GET', '/user/', { as: ['someone', PASSWORD] })).statusCode).toBe(200);
    } finally {
      await ro.close();
    }
  });
});
