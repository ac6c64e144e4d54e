import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const PASSWORD = 'a long enough password';
const alice: [string, string] = ['alice', PASSWORD];
const bob: [string, string] = ['bob', PASSWORD];
const root: [string, string] = ['root', PASSWORD];
let t: TestRegistry;
let splunk: TestRegistry;
let repoId: number;
let orgId: number;
let aliceId: number;

beforeAll(async () => {
  t = await startTestRegistry({ label: 'apilogs' });
  aliceId = (await t.createUser('alice', PASSWORD)).id;
  await t.createUser('bob', PASSWORD);
  await t.createUser('root', PASSWORD, { superuser: true });
  orgId = (await t.createOrganization('acme', 'alice')).id;
  const repo = await t.createRepository('acme/web');
  repoId = repo.id;
  await t.createRepository('acme/other');
  // 45 pushes on March 2nd (same second for the first ten: ties are paged by id), 5 on March 4th.
  await t.db.query(
    `INSERT INTO logentry (kind, account_id, performer_id, repository_id, ip, metadata_json, datetime)
     SELECT 'push_repo', $1, $2, $3, '10.1.1.1', jsonb_build_object('i', g),
            timestamptz '2026-03-02 10:00:00+00' + greatest(g - 9, 0) * interval '1 minute'
     FROM generate_series(0, 44) g`, [orgId, aliceId, repoId]);
  await t.db.query(
    `INSERT INTO logentry (kind, account_id, repository_id, metadata_json, datetime)
     SELECT 'pull_repo', $1, NULL, jsonb_build_object('j', g), timestamptz '2026-03-04 08:00:00.123456+00' + g * interval '1 microsecond'
     FROM generate_series(0, 4) g`, [orgId]);
  await t.db.query(`INSERT INTO logentry (kind, account_id, metadata_json, datetime) VALUES
    ('service_key_create', $1, '{}', '2026-03-02 12:00:00+00'), ('create_app_specific_token', $1, '{"x": 1}', '2026-03-02 12:00:00+00')`, [aliceId]);
  splunk = await startTestRegistry({ label: 'apilogssplunk', config: { LOGS_MODEL: 'splunk' } });
  await splunk.createUser('alice', PASSWORD);
}, 60_000);
afterAll(async () => {
  await t?.close();
  await splunk?.close();
});

async function allPages(url: string, as: [string, string]): Promise<{ pages: number; logs: Record<string, unknown>[] }> {
  const logs: Record<string, unknown>[] = [];
  let next: string | undefined;
  let pages = 0;
  do {
    const response = await t.api('GET', `${url}${next ? `&next_page=${encodeURIComponent(next)}` : ''}`, { as });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    logs.push(...body.logs);
    next = body.next_page;
    pages += 1;
  } while (next);
  return { pages, logs };
}

describe('GET .../logs', () => {
  it('pages an organization by 20, newest first, every entry once (ties and microseconds included)', async () => {
    const first = (await t.api('GET', '/organization/acme/logs?starttime=03/01/2026&endtime=03/05/2026', { as: alice })).json();
    expect(first.start_time).toBe('Sun, 01 Mar 2026 00:00:00 -0000');
    expect(first.end_time).toBe('Fri, 06 Mar 2026 00:00:00 -0000');
    expect(first.logs).toHaveLength(20);
    expect(first.logs[0]).toEqual({ kind: 'pull_repo', metadata: { j: 4 }, ip: null, datetime: 'Wed, 04 Mar 2026 08:00:00 -0000' });
    expect(first.logs[5]).toMatchObject({
      kind: 'push_repo', metadata: { i: 44 }, ip: '10.1.1.1',
      performer: { kind: 'user', name: 'alice', is_robot: false, avatar: { name: 'alice', kind: 'user' } },
    });
    const { pages, logs } = await allPages('/organization/acme/logs?starttime=03/01/2026&endtime=03/05/2026', alice);
    expect(pages).toBe(3);
    expect(logs).toHaveLength(50);
    const keys = logs.map((l) => JSON.stringify(l.metadata));
    expect(new Set(keys).size).toBe(50);
  });

  it('filters a repository, a performer, and the user view (service keys left out)', async () => {
    const repo = await allPages('/repository/acme/web/logs?starttime=03/02/2026&endtime=03/02/2026', alice);
    expect(repo.logs).toHaveLength(45);
    const byAlice = await allPages('/organization/acme/logs?starttime=03/01/2026&endtime=03/05/2026&performer=alice', alice);
    expect(byAlice.logs).toHaveLength(45);
    const nobody = (await t.api('GET', '/organization/acme/logs?starttime=03/01/2026&endtime=03/05/2026&performer=ghost', { as: alice })).json();
    expect(nobody.logs).toEqual([]);
    const mine = (await t.api('GET', '/user/logs?starttime=03/02/2026&endtime=03/02/2026', { as: alice })).json();
    expect(mine.logs.map((l: { kind: string }) => l.kind)).toEqual(['create_app_specific_token']);
  });

  it('stops paging at ACTION_LOG_MAX_PAGE', async () => {
    (t.deps.config.quay as { ACTION_LOG_MAX_PAGE?: number | null }).ACTION_LOG_MAX_PAGE = 2;
    try {
      const { pages, logs } = await allPages('/organization/acme/logs?starttime=03/01/2026&endtime=03/05/2026', alice);
      expect([pages, logs.length]).toEqual([2, 40]);
    } finally {
      (t.deps.config.quay as { ACTION_LOG_MAX_PAGE?: number | null }).ACTION_LOG_MAX_PAGE = undefined;
    }
  });

  it('lets only admins and superusers read, and 404s an unknown repository for them', async () => {
    expect((await t.api('GET', '/organization/acme/logs')).statusCode).toBe(401);
    expect((await t.api('GET', '/organization/acme/logs', { as: bob })).statusCode).toBe(403);
    expect((await t.api('GET', '/repository/acme/web/logs', { as: bob })).statusCode).toBe(403);
    expect((await t.api('GET', '/repository/acme/web/logs')).statusCode).toBe(401);
    expect((await t.api('GET', '/organization/acme/logs?starttime=03/01/2026&endtime=03/05/2026', { as: root })).json().logs).toHaveLength(20);
    expect((await t.api('GET', '/repository/acme/nothere/logs', { as: alice })).statusCode).toBe(404);
    expect((await t.api('GET', '/user/logs')).statusCode).toBe(401);
  });

  it('refuses malformed dates, inverted spans and forged page tokens with 400', async () => {
    for (const query of ['starttime=2026-03-01', 'endtime=13/01/2026', 'starttime=02/30/2026', 'starttime=03/05/2026&endtime=03/01/2026', 'next_page=garbage',
      `next_page=${Buffer.from('{"d":"x","i":1,"p":1}').toString('base64url')}`]) {
      const response = await t.api('GET', `/organization/acme/logs?${query}`, { as: alice });
      expect(response.statusCode, query).toBe(400);
      expect(response.json().error_type).toBe('invalid_request');
    }
    expect((await t.api('GET', '/organization/acme/logs?starttime=03/05/2026&endtime=03/01/2026', { as: alice })).json().error_message).toBe('Invalid time span selected');
  });

  it('defaults to the last day and answers Method not implemented under LOGS_MODEL splunk', async () => {
    const body = (await t.api('GET', '/organization/acme/logs', { as: alice })).json();
    expect(Date.parse(body.end_time) - Date.parse(body.start_time)).toBe(2 * 86_400_000);
    const refused = await splunk.api('GET', '/user/logs', { as: alice });
    expect(refused.statusCode).toBe(501);
    expect(refused.json().error_message).toBe('Method not implemented');
  });
});

describe('GET .../aggregatelogs', () => {
  it('counts per kind and UTC day', async () => {
    const org = (await t.api('GET', '/organization/acme/aggregatelogs?starttime=03/01/2026&endtime=03/05/2026', { as: alice })).json();
    expect(org.aggregated).toEqual([
      { kind: 'push_repo', count: 45, datetime: 'Mon, 02 Mar 2026 00:00:00 -0000' },
      { kind: 'pull_repo', count: 5, datetime: 'Wed, 04 Mar 2026 00:00:00 -0000' },
    ]);
    const repo = (await t.api('GET', '/repository/acme/web/aggregatelogs?starttime=03/01/2026&endtime=03/05/2026', { as: alice })).json();
    expect(repo.aggregated).toEqual([{ kind: 'push_repo', count: 45, datetime: 'Mon, 02 Mar 2026 00:00:00 -0000' }]);
    const mine = (await t.api('GET', '/user/aggregatelogs?starttime=03/02/2026&endtime=03/02/2026', { as: alice })).json();
    expect(mine.aggregated).toEqual([{ kind: 'create_app_specific_token', count: 1, datetime: 'Mon, 02 Mar 2026 00:00:00 -0000' }]);
  });

  it("refuses a range over Quay's month, and non-admins", async () => {
    const response = await t.api('GET', '/organization/acme/aggregatelogs?starttime=01/01/2026&endtime=03/05/2026', { as: alice });
    expect(response.statusCode).toBe(400);
    expect(response.json().error_message).toBe('Cannot lookup aggregated logs over a period longer than a month');
    expect((await t.api('GET', '/organization/acme/aggregatelogs', { as: bob })).statusCode).toBe(403);
  });
});

describe('GET /superuser/logs and /superuser/aggregatelogs', () => {
  const acmeNamespace = { kind: 'org', name: 'acme', avatar: { name: 'acme', hash: '', color: '#000000', kind: 'org' } };

  it('pages every namespace\'s entries for a superuser, each with its namespace (none for a namespace-less entry)', async () => {
    await t.db.query(`INSERT INTO logentry (kind, account_id, metadata_json, datetime) VALUES ('user_create', NULL, '{"username": "carol"}', '2026-03-03 09:00:00+00')`);
    const { pages, logs } = await allPages('/superuser/logs?starttime=03/01/2026&endtime=03/05/2026', root);
    expect(logs).toHaveLength(45 + 5 + 2 + 1);
    expect(pages).toBe(3);
    expect(logs[0]).toMatchObject({ kind: 'pull_repo', metadata: { j: 4 }, datetime: 'Wed, 04 Mar 2026 08:00:00 -0000', namespace: acmeNamespace });
    expect(logs[0]).not.toHaveProperty('performer');
    const orphan = logs.find((l) => l.kind === 'user_create')!;
    expect(orphan).toEqual({ kind: 'user_create', metadata: { username: 'carol' }, ip: null, datetime: 'Tue, 03 Mar 2026 09:00:00 -0000' });
    // Service-level kinds are in (only the user view leaves them out); a user's entries name the user.
    expect(logs.find((l) => l.kind === 'service_key_create')).toMatchObject({ namespace: { kind: 'user', name: 'alice' } });
    expect(logs.find((l) => l.kind === 'push_repo')).toMatchObject({ namespace: acmeNamespace, performer: { name: 'alice' } });
  });

  it('counts every namespace per kind and UTC day, within Quay\'s month', async () => {
    const body = (await t.api('GET', '/superuser/aggregatelogs?starttime=03/02/2026&endtime=03/04/2026', { as: root })).json();
    expect(body.aggregated).toEqual([
      { kind: 'create_app_specific_token', count: 1, datetime: 'Mon, 02 Mar 2026 00:00:00 -0000' },
      { kind: 'push_repo', count: 45, datetime: 'Mon, 02 Mar 2026 00:00:00 -0000' },
      { kind: 'service_key_create', count: 1, datetime: 'Mon, 02 Mar 2026 00:00:00 -0000' },
      { kind: 'user_create', count: 1, datetime: 'Tue, 03 Mar 2026 00:00:00 -0000' },
      { kind: 'pull_repo', count: 5, datetime: 'Wed, 04 Mar 2026 00:00:00 -0000' },
    ]);
    const tooLong = await t.api('GET', '/superuser/aggregatelogs?starttime=01/01/2026&endtime=03/05/2026', { as: root });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().error_message).toBe('Cannot lookup aggregated logs over a period longer than a month');
  });

  it('answers 401 to anonymous callers and 403 to users, organization admins and robots', async () => {
    const robot = await t.createRobot('acme', 'auditor');
    for (const url of ['/superuser/logs', '/superuser/aggregatelogs']) {
      const anonymous = await t.api('GET', url);
      expect(anonymous.statusCode, url).toBe(401);
      expect(anonymous.json().error_type).toBe('invalid_token');
      for (const as of [alice, bob, [robot.username, robot.token] as [string, string]]) {
        const refused = await t.api('GET', url, { as });
        expect(refused.statusCode, `${url} as ${as[0]}`).toBe(403);
        expect(refused.json().error_type).toBe('insufficient_scope');
      }
    }
  });

  it('refuses bad dates and forged page tokens with 400, and answers Method not implemented under LOGS_MODEL splunk', async () => {
    for (const query of ['starttime=2026-03-01', 'starttime=03/05/2026&endtime=03/01/2026', 'next_page=garbage']) {
      const response = await t.api('GET', `/superuser/logs?${query}`, { as: root });
      expect(response.statusCode, query).toBe(400);
      expect(response.json().error_type).toBe('invalid_request');
    }
    await splunk.createUser('root', PASSWORD, { superuser: true });
    for (const url of ['/superuser/logs', '/superuser/aggregatelogs']) {
      const refused = await splunk.api('GET', url, { as: root });
      expect(refused.statusCode).toBe(501);
      expect(refused.json().error_message).toBe('Method not implemented');
    }
  });
});
