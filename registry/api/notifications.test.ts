import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const PASSWORD = 'a long enough password';
let t: TestRegistry;
const alice: [string, string] = ['alice', PASSWORD];
const bob: [string, string] = ['bob', PASSWORD];
const base = '/repository/acme/app/notification';

beforeAll(async () => {
  t = await startTestRegistry({ label: 'apinotifications', config: { SSRF_ALLOWED_HOSTS: ['127.0.0.1'], WEBHOOK_HOSTNAME_BLACKLIST: ['blocked.example'] } });
  await t.createUser('alice', PASSWORD);
  await t.createUser('bob', PASSWORD);
  await t.createOrganization('acme', 'alice');
  await t.createTeam('acme', 'ops', 'member', ['bob']);
  await t.createRepository('acme/app');
  await t.grant('acme/app', { user: 'bob' }, 'write');
});
afterAll(async () => t?.close());

function expectQuayError(response: { statusCode: number; json(): Record<string, unknown> }, status: number, message?: string | RegExp): void {
  expect(response.statusCode).toBe(status);
  const body = response.json();
  expect(body).toMatchObject({ status, error_type: expect.any(String), error_message: expect.any(String) });
  if (message) expect(body.error_message).toMatch(message);
}

const webhook = (url = 'http://127.0.0.1:9/hook') => ({ event: 'repo_push', method: 'webhook', config: { url }, eventConfig: {}, title: 'ci' });

describe('repository notifications API', () => {
  it('creates, lists and gets notifications in Quay\'s shape, with an audit log entry', async () => {
    const created = await t.api('POST', `${base}/`, { as: alice, body: webhook() });
    expect(created.statusCode).toBe(201);
    const view = created.json();
    expect(view).toEqual({
      uuid: expect.stringMatching(/^[0-9a-f-]{36}$/), title: 'ci', event: 'repo_push', method: 'webhook',
      config: { url: 'http://127.0.0.1:9/hook' }, event_config: {}, number_of_failures: 0,
    });
    const vuln = await t.api('POST', `${base}/`, { as: alice, body: { event: 'vulnerability_found', method: 'quay_notification', config: { target: { kind: 'team', name: 'ops' } }, eventConfig: { vulnerability: { priority: 'High' } } } });
    expect(vuln.statusCode).toBe(201);
    expect((await t.api('GET', `${base}/`, { as: alice })).json()).toEqual({ notifications: [view, vuln.json()] });
    expect((await t.api('GET', `${base}`, { as: alice })).json().notifications).toHaveLength(2);
    expect((await t.api('GET', `${base}/${view.uuid}`, { as: alice })).json()).toEqual(view);
    const { rows } = await t.db.query(`SELECT metadata_json FROM logentry WHERE kind = 'add_repo_notification' ORDER BY id`);
    expect(rows[0].metadata_json).toEqual({ repo: 'app', namespace: 'acme', notification_id: view.uuid, event: 'repo_push', method: 'webhook' });
  });

  it.each([
    'repo_push', 'vulnerability_found', 'repo_mirror_sync_started', 'repo_mirror_sync_success', 'repo_mirror_sync_failed',
    'quota_warning', 'quota_error', 'repo_image_expiry',
    // Accepted as Quay accepts them; quayfleet has no build worker, so nothing but `test` raises them.
    'build_queued', 'build_start', 'build_success', 'build_failure', 'build_cancelled',
  ])('accepts a notification for %s', async (event) => {
    const created = await t.api('POST', `${base}/`, { as: alice, body: { ...webhook(), event } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ event, number_of_failures: 0 });
    expect((await t.api('DELETE', `${base}/${created.json().uuid}`, { as: alice })).statusCode).toBe(204);
  });

  it('refuses bad input with Quay errors, never 500', async () => {
    const bad = async (body: unknown, message?: string | RegExp) => expectQuayError(await t.api('POST', `${base}/`, { as: alice, body }), 400, message);
    await bad('{not json');
    await bad([]);
    await bad({ ...webhook(), eventConfig: undefined }, /eventConfig/);
    await bad({ ...webhook(), event: 'nope' }, 'Unknown event: nope');
    await bad({ ...webhook(), method: 'hipchat' }, 'Unknown method: hipchat');
    await bad({ ...webhook(), config: {} }, 'Missing webhook URL');
    await bad({ ...webhook(), config: 'x' });
    await bad({ ...webhook(), method: 'slack', config: {} }, 'Missing Slack Callback URL');
    await bad({ ...webhook(), method: 'email', config: { email: 'not-an-address' } }, 'Missing e-mail address');
    await bad({ ...webhook(), config: { url: 'http://127.0.0.1/', template: '{nope' } }, 'Template must be valid JSON');
    await bad({ ...webhook(), config: { url: 'http://127.0.0.1/', template: '{"a": "${}"}' } }, 'Empty expression');
    await bad({ ...webhook(), method: 'quay_notification', config: { target: { kind: 'user', name: 'nobody' } } }, 'Unknown user nobody');
    await bad({ ...webhook(), method: 'quay_notification', config: { target: { kind: 'team', name: 'nope' } } }, 'Unknown team nope');
    await bad({ ...webhook(), method: 'quay_notification', config: { target: { kind: 'org', name: 'other' } } }, 'Organization name must match repository namespace');
    await bad({ ...webhook(), method: 'quay_notification', config: {} }, 'Missing target');
    await bad({ ...webhook(), event: 'vulnerability_found', eventConfig: { vulnerability: { priority: 'Severe' } } }, /priority/);
    await bad({ ...webhook(), event: 'vulnerability_found', eventConfig: { level: 9 } }, /level/);
    await bad({ ...webhook(), title: 'x'.repeat(300) });
  });

  it.each([
    ['ftp://127.0.0.1/x', 'http or https'],
    ['http://169.254.169.254/latest/meta-data/', 'linkLocal'],
    ['http://10.0.0.1/hook', 'private'],
    ['http://localhost:9/hook', 'not allowed'],
    ['http://[::1]:9/hook', 'loopback'],
    ['http://blocked.example/hook', 'not allowed'],
    ['http://user:pw@127.0.0.1/hook', 'credentials'],
  ])('refuses the webhook target %s (SSRF)', async (url, why) => {
    expectQuayError(await t.api('POST', `${base}/`, { as: alice, body: webhook(url) }), 400, why);
    expectQuayError(await t.api('POST', `${base}/`, { as: alice, body: { ...webhook(url), method: 'slack' } }), 400, why);
  });

  it('refuses callers without admin on the repository', async () => {
    expectQuayError(await t.api('GET', `${base}/`), 401);
    expectQuayError(await t.api('GET', `${base}/`, { as: bob }), 403);
    expectQuayError(await t.api('POST', `${base}/`, { as: bob, body: webhook() }), 403);
    expectQuayError(await t.api('GET', '/repository/acme/missing/notification/', { as: alice }), 404);
  });

  it('resets the failure count of a disabled notification, sends a test event, deletes', async () => {
    const { uuid } = (await t.api('POST', `${base}/`, { as: alice, body: webhook() })).json();
    await t.db.query(`UPDATE repositorynotification SET number_of_failures = 3 WHERE uuid = $1`, [uuid]);
    expect((await t.api('GET', `${base}/${uuid}`, { as: alice })).json().number_of_failures).toBe(3);
    // Disabled: a test event is not even queued.
    await t.db.query('DELETE FROM outbox');
    expect((await t.api('POST', `${base}/${uuid}/test`, { as: alice })).json()).toEqual({});
    expect((await t.db.query(`SELECT 1 FROM outbox WHERE queue_name = 'notification'`)).rowCount).toBe(0);

    const reset = await t.api('POST', `${base}/${uuid}`, { as: alice });
    expect(reset.statusCode).toBe(204);
    expect((await t.api('GET', `${base}/${uuid}`, { as: alice })).json().number_of_failures).toBe(0);
    expect((await t.db.query(`SELECT 1 FROM logentry WHERE kind = 'reset_repo_notification'`)).rowCount).toBe(1);

    const test = await t.api('POST', `${base}/${uuid}/test`, { as: alice });
    expect(test.statusCode).toBe(200);
    const { rows } = await t.db.query<{ payload: Record<string, unknown> }>(`SELECT payload FROM outbox WHERE queue_name = 'notification'`);
    expect(rows.map((r) => r.payload)).toEqual([expect.objectContaining({
      notificationUuid: uuid, event: 'repo_push',
      eventData: expect.objectContaining({ repository: 'acme/app', updated_tags: ['latest', 'foo'] }),
    })]);

    expect((await t.api('DELETE', `${base}/${uuid}`, { as: alice })).statusCode).toBe(204);
    expectQuayError(await t.api('GET', `${base}/${uuid}`, { as: alice }), 404);
    expectQuayError(await t.api('DELETE', `${base}/${uuid}`, { as: alice }), 400, 'No repository notification found for: acme, app');
    expectQuayError(await t.api('POST', `${base}/${uuid}`, { as: alice }), 400, 'No repository notification found');
    expectQuayError(await t.api('POST', `${base}/${uuid}/test`, { as: alice }), 400, 'No repository notification found');
    expectQuayError(await t.api('GET', `${base}/not-a-uuid`, { as: alice }), 404);
    expectQuayError(await t.api('DELETE', `${base}/not-a-uuid`, { as: alice }), 400);
  });
});

describe('user notifications API', () => {
  it('lists the quay_notification rows of the user and of organizations the user administers, and dismisses one', async () => {
    const ids = await t.db.query<{ id: number; username: string }>(`SELECT id, username FROM namespace WHERE username IN ('alice', 'bob', 'acme')`);
    const id = (name: string) => ids.rows.find((r) => r.username === name)!.id;
    await t.db.query(
      `INSERT INTO notification (kind, target_id, metadata_json, created) VALUES
       ('repo_push', $1, '{"repository":"acme/app"}', now() - interval '2 minutes'),
       ('vulnerability_found', $2, '{"repository":"acme/app"}', now() - interval '1 minute'),
       ('repo_push', $3, '{}', now())`, [id('alice'), id('acme'), id('bob')]);
    const list = await t.api('GET', '/user/notifications', { as: alice });
    expect(list.json()).toEqual({
      notifications: [
        { id: expect.any(String), organization: 'acme', kind: 'vulnerability_found', created: expect.stringMatching(/-0000$/), metadata: { repository: 'acme/app' }, dismissed: false },
        { id: expect.any(String), organization: null, kind: 'repo_push', created: expect.any(String), metadata: { repository: 'acme/app' }, dismissed: false },
      ],
      additional: false,
    });
    expect((await t.api('GET', '/user/notifications?limit=1', { as: alice })).json()).toMatchObject({ additional: true });
    const first = list.json().notifications[0].id;
    expect((await t.api('PUT', `/user/notifications/${first}`, { as: alice, body: { dismissed: true } })).json().dismissed).toBe(true);
    expect((await t.api('GET', `/user/notifications/${first}`, { as: alice })).json().dismissed).toBe(true);
    // Bob sees only his own row, never alice's organization's.
    expect((await t.api('GET', '/user/notifications', { as: bob })).json().notifications).toHaveLength(1);
    expectQuayError(await t.api('GET', `/user/notifications/${first}`, { as: bob }), 404);
    expectQuayError(await t.api('PUT', `/user/notifications/${first}`, { as: alice, body: { dismissed: 'yes' } }), 400);
    expectQuayError(await t.api('GET', '/user/notifications?limit=0', { as: alice }), 400);
    expectQuayError(await t.api('GET', '/user/notifications'), 401);
  });
});
