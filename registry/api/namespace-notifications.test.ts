/**
 * Namespace notifications API (Quay's endpoints/api/namespacenotification.py and its tests): the
 * organization and user routes, who may use them, Quay's errors for bad input (never a 500), the
 * audit log, and the test send queued as a namespace-type notification job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const PASSWORD = 'a long enough password';
let t: TestRegistry;
let off: TestRegistry;
const alice: [string, string] = ['alice', PASSWORD];
const bob: [string, string] = ['bob', PASSWORD];
const root: [string, string] = ['root', PASSWORD];
const org = '/organization/acme/notifications';
const own = '/user/namespacenotifications';

beforeAll(async () => {
  t = await startTestRegistry({ label: 'nsnotifications', config: { FEATURE_QUOTA_MANAGEMENT: true, SSRF_ALLOWED_HOSTS: ['127.0.0.1'] } });
  await t.createUser('alice', PASSWORD);
  await t.createUser('bob', PASSWORD);
  await t.createUser('root', PASSWORD, { superuser: true });
  await t.createOrganization('acme', 'alice');
  await t.createTeam('acme', 'devs', 'member', ['bob']);
  off = await startTestRegistry({ label: 'nsnotificationsoff' });
  await off.createUser('alice', PASSWORD);
  await off.createOrganization('acme', 'alice');
});
afterAll(async () => { await t?.close(); await off?.close(); });

function expectQuayError(response: { statusCode: number; json(): Record<string, unknown> }, status: number, message?: string | RegExp): void {
  expect(response.statusCode).toBe(status);
  const body = response.json();
  expect(body).toMatchObject({ status, error_type: expect.any(String), error_message: expect.any(String) });
  if (message) expect(body.error_message).toMatch(message);
}

const quotaWarning = (extra: Record<string, unknown> = {}) => ({
  event: 'quota_warning', method: 'webhook', config: { url: 'http://127.0.0.1:9/quota' }, eventConfig: {}, title: 'Quota Warning Alert', ...extra,
});

async function outboxJobs(): Promise<{ payload: Record<string, unknown> }[]> {
  return (await t.db.query(`SELECT payload FROM outbox WHERE queue_name = 'notification' ORDER BY id`)).rows;
}

describe('organization namespace notifications', () => {
  it('creates, lists, gets, resets and deletes, in Quay\'s shape, with audit log entries', async () => {
    expect((await t.api('GET', org, { as: alice })).json()).toEqual({ notifications: [] });
    const created = await t.api('POST', org, { as: alice, body: quotaWarning() });
    expect(created.statusCode).toBe(201);
    const view = created.json();
    expect(view).toEqual({
      uuid: expect.stringMatching(/^[0-9a-f-]{36}$/), title: 'Quota Warning Alert', event: 'quota_warning', method: 'webhook',
      config: { url: 'http://127.0.0.1:9/quota' }, event_config: {}, number_of_failures: 0,
    });
    const error = await t.api('POST', org, { as: alice, body: { event: 'quota_error', method: 'email', config: { email: 'ops@acme.example' }, eventConfig: {} } });
    expect(error.statusCode).toBe(201);
    expect(error.json()).toMatchObject({ event: 'quota_error', method: 'email', title: null });
    expect((await t.api('GET', org, { as: alice })).json()).toEqual({ notifications: [view, error.json()] });
    expect((await t.api('GET', `${org}/${view.uuid}`, { as: alice })).json()).toEqual(view);

    await t.db.query(`UPDATE namespacenotification SET number_of_failures = 3 WHERE uuid = $1`, [view.uuid]);
    expect((await t.api('GET', `${org}/${view.uuid}`, { as: alice })).json().number_of_failures).toBe(3);
    expect((await t.api('POST', `${org}/${view.uuid}`, { as: alice })).statusCode).toBe(204);
    expect((await t.api('GET', `${org}/${view.uuid}`, { as: alice })).json().number_of_failures).toBe(0);

    expect((await t.api('DELETE', `${org}/${error.json().uuid}`, { as: alice })).statusCode).toBe(204);
    expectQuayError(await t.api('GET', `${org}/${error.json().uuid}`, { as: alice }), 404);
    const { rows } = await t.db.query(
      `SELECT kind, metadata_json FROM logentry WHERE kind LIKE '%namespace_notification' ORDER BY id`);
    expect(rows.map((r) => r.kind)).toEqual([
      'create_namespace_notification', 'create_namespace_notification', 'reset_namespace_notification', 'delete_namespace_notification',
    ]);
    expect(rows[0].metadata_json).toEqual({ namespace: 'acme', notification_id: view.uuid, event: 'quota_warning', method: 'webhook' });
    expect((await t.api('DELETE', `${org}/${view.uuid}`, { as: alice })).statusCode).toBe(204);
  });

  it('queues the sample quota event as a namespace notification job on test, and nothing for a disabled one', async () => {
    const { uuid } = (await t.api('POST', org, { as: alice, body: quotaWarning() })).json();
    await t.db.query('DELETE FROM outbox');
    const sent = await t.api('POST', `${org}/${uuid}/test`, { as: alice });
    expect(sent.statusCode).toBe(200);
    expect(sent.json()).toEqual({});
    const [job, ...rest] = await outboxJobs();
    expect(rest).toEqual([]);
    expect(job!.payload).toMatchObject({
      notificationUuid: uuid, event: 'quota_warning', notificationType: 'namespace',
      eventData: { namespace: 'acme', threshold_percent: 80, usage_percent: 80 },
    });
    await t.db.query(`UPDATE namespacenotification SET number_of_failures = 3 WHERE uuid = $1`, [uuid]);
    await t.db.query('DELETE FROM outbox');
    expect((await t.api('POST', `${org}/${uuid}/test`, { as: alice })).statusCode).toBe(200);
    expect(await outboxJobs()).toEqual([]);
    expect((await t.api('DELETE', `${org}/${uuid}`, { as: alice })).statusCode).toBe(204);
  });

  it('refuses bad input with Quay\'s errors, never a 500', async () => {
    const bad = async (body: unknown, message?: string | RegExp) => expectQuayError(await t.api('POST', org, { as: alice, body }), 400, message);
    await bad('{not json');
    await bad([]);
    await bad({ ...quotaWarning(), eventConfig: undefined }, /eventConfig/);
    await bad({ ...quotaWarning(), config: undefined }, /config/);
    await bad({ ...quotaWarning(), event: 'repo_push' }, "Invalid event 'repo_push'. Must be one of: quota_error, quota_warning");
    await bad({ ...quotaWarning(), event: 'build_success' }, /Invalid event 'build_success'/);
    await bad({ ...quotaWarning(), method: 'hipchat' }, "Unknown notification method 'hipchat'");
    await bad({ ...quotaWarning(), config: {} }, 'Missing webhook URL');
    await bad({ ...quotaWarning(), config: { url: 'http://10.0.0.1/hook' } }, /private/);
    await bad({ ...quotaWarning(), config: { url: 'http://169.254.169.254/latest/meta-data/' } }, /linkLocal/);
    await bad({ ...quotaWarning(), method: 'email', config: { email: 'nope' } }, 'Missing e-mail address');
    await bad({ ...quotaWarning(), method: 'quay_notification', config: { target: { kind: 'org', name: 'other' } } }, 'Organization name must match repository namespace');
    await bad({ ...quotaWarning(), method: 'quay_notification', config: { target: { kind: 'team', name: 'nope' } } }, 'Unknown team nope');
    await bad({ ...quotaWarning(), title: 'x'.repeat(300) });
    expectQuayError(await t.api('GET', `${org}/not-a-uuid`, { as: alice }), 404);
    expectQuayError(await t.api('DELETE', `${org}/00000000-0000-4000-8000-000000000000`, { as: alice }), 404);
    expectQuayError(await t.api('POST', `${org}/00000000-0000-4000-8000-000000000000`, { as: alice }), 404);
    expectQuayError(await t.api('POST', `${org}/00000000-0000-4000-8000-000000000000/test`, { as: alice }), 404);
  });

  it('lets only the organization\'s admins and superusers in; others cannot tell whether it exists', async () => {
    const { uuid } = (await t.api('POST', org, { as: alice, body: quotaWarning() })).json();
    expectQuayError(await t.api('GET', org), 401);
    expectQuayError(await t.api('GET', org, { as: bob }), 403);
    expectQuayError(await t.api('POST', org, { as: bob, body: quotaWarning() }), 403);
    expectQuayError(await t.api('DELETE', `${org}/${uuid}`, { as: bob }), 403);
    expectQuayError(await t.api('GET', '/organization/nowhere/notifications', { as: bob }), 403);
    expectQuayError(await t.api('POST', '/organization/nowhere/notifications', { as: root, body: quotaWarning() }), 404);
    expect((await t.api('GET', org, { as: root })).json().notifications.map((n: { uuid: string }) => n.uuid)).toContain(uuid);
    // Another namespace's notification is not found through this one.
    await t.createOrganization('other', 'bob');
    expectQuayError(await t.api('GET', `/organization/other/notifications/${uuid}`, { as: bob }), 404);
    expect((await t.api('DELETE', `${org}/${uuid}`, { as: alice })).statusCode).toBe(204);
  });
});

describe('user namespace notifications', () => {
  it('manages the signed-in user\'s own namespace notifications and never another\'s', async () => {
    const created = await t.api('POST', own, { as: bob, body: quotaWarning({ method: 'email', config: { email: 'bob@example.com' }, title: 'User Quota Warning' }) });
    expect(created.statusCode).toBe(201);
    const view = created.json();
    expect(view).toMatchObject({ event: 'quota_warning', method: 'email', title: 'User Quota Warning' });
    expect((await t.api('GET', own, { as: bob })).json()).toEqual({ notifications: [view] });
    expect((await t.api('GET', own, { as: alice })).json()).toEqual({ notifications: [] });
    expectQuayError(await t.api('GET', `${own}/${view.uuid}`, { as: alice }), 404);
    expectQuayError(await t.api('DELETE', `${own}/${view.uuid}`, { as: alice }), 404);
    expectQuayError(await t.api('POST', `${own}/${view.uuid}`, { as: alice }), 404);
    expectQuayError(await t.api('POST', own, { as: bob, body: quotaWarning({ event: 'build_success' }) }), 400, /Invalid event/);
    expectQuayError(await t.api('GET', own), 401);

    await t.db.query('DELETE FROM outbox');
    expect((await t.api('POST', `${own}/${view.uuid}/test`, { as: bob })).statusCode).toBe(200);
    expect((await outboxJobs())[0]!.payload).toMatchObject({ notificationUuid: view.uuid, notificationType: 'namespace', eventData: { namespace: 'bob' } });
    expect((await t.api('POST', `${own}/${view.uuid}`, { as: bob })).statusCode).toBe(204);
    expect((await t.api('DELETE', `${own}/${view.uuid}`, { as: bob })).statusCode).toBe(204);
    expectQuayError(await t.api('GET', `${own}/${view.uuid}`, { as: bob }), 404);
  });

  it('is not there when quota management is off (Quay\'s show_if)', async () => {
    expectQuayError(await off.api('GET', org, { as: alice }), 404);
    expectQuayError(await off.api('GET', own, { as: alice }), 404);
  });
});
