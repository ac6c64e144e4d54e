import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const PASSWORD = 'a long enough password';
const alice: [string, string] = ['alice', PASSWORD];
const bob: [string, string] = ['bob', PASSWORD];
const root: [string, string] = ['root', PASSWORD];
let t: TestRegistry;
let gatedOff: TestRegistry;
let splunk: TestRegistry;
const CALLBACK = { callback_url: 'https://93.184.215.14/hook' };

beforeAll(async () => {
  t = await startTestRegistry({ label: 'apiexport', config: { SSRF_ALLOWED_HOSTS: ['203.0.113.0/24'] } });
  await t.createUser('alice', PASSWORD);
  await t.createUser('bob', PASSWORD);
  await t.createUser('root', PASSWORD, { superuser: true });
  await t.createOrganization('acme', 'alice');
  await t.createRepository('acme/web');
  gatedOff = await startTestRegistry({ label: 'apiexportoff', config: { FEATURE_LOG_EXPORT: false } });
  await gatedOff.createUser('alice', PASSWORD);
  splunk = await startTestRegistry({ label: 'apiexportsplunk', config: { LOGS_MODEL: 'splunk' } });
  await splunk.createUser('alice', PASSWORD);
}, 60_000);
afterAll(async () => {
  await t?.close();
  await gatedOff?.close();
  await splunk?.close();
});

async function outboxJobs(): Promise<number> {
  const { rows } = await t.db.query<{ count: number }>(`SELECT count(*)::bigint AS count FROM outbox WHERE queue_name = 'exportactionlogs'`);
  return rows[0]!.count;
}

describe('POST .../exportlogs', () => {
  it('records the request for exactly the asked days, enqueues one job, audits it, and answers the export id', async () => {
    const before = await outboxJobs();
    const response = await t.api('POST', '/organization/acme/exportlogs?starttime=03/03/2026&endtime=03/05/2026', {
      as: alice, body: { ...CALLBACK, callback_email: 'ops@example.com' },
    });
    expect(response.statusCode).toBe(200);
    const { export_id: exportId } = response.json();
    expect(exportId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await outboxJobs()).toBe(before + 1);
    const { rows } = await t.db.query(
      `SELECT start_time, end_time, callback_url, callback_email, namespace_name, repository_name, status FROM logexport WHERE export_id = $1`, [exportId]);
    expect(rows).toEqual([{
      start_time: new Date('2026-03-03T00:00:00Z'), end_time: new Date('2026-03-06T00:00:00Z'), callback_url: CALLBACK.callback_url,
      callback_email: 'ops@example.com', namespace_name: 'acme', repository_name: null, status: 'queued',
    }]);
    const { rows: [audit] } = await t.db.query(`SELECT metadata_json FROM logentry WHERE kind = 'export_logs_success' ORDER BY id DESC LIMIT 1`);
    expect(audit.metadata_json).toMatchObject({ export_id: exportId, message: 'queued for export', url: CALLBACK.callback_url, email: 'ops@example.com' });
    expect(audit.metadata_json['date/time']).toMatch(/^\d{2}\/\d{2}\/\d{4} \d{2}:\d{2}$/);
  });

  it('exports a repository for its admins and the user namespace for its owner', async () => {
    const repo = await t.api('POST', '/repository/acme/web/exportlogs', { as: alice, body: { callback_email: 'a@example.com' } });
    expect(repo.statusCode).toBe(200);
    const { rows } = await t.db.query(`SELECT repository_name, end_time - start_time AS span FROM logexport WHERE export_id = $1`, [repo.json().export_id]);
    expect(rows[0].repository_name).toBe('web');
    expect((await t.api('POST', '/user/exportlogs', { as: bob, body: { callback_email: 'b@example.com' } })).statusCode).toBe(200);
    expect((await t.api('POST', '/organization/acme/exportlogs', { as: root, body: CALLBACK })).statusCode).toBe(200);
  });

  it('refuses bad input with 400 and audits export_logs_failure', async () => {
    const cases: [string, unknown, string | RegExp][] = [
      ['?starttime=03-01-2026', CALLBACK, /Invalid starttime/],
      ['?endtime=02/30/2026', CALLBACK, /Invalid endtime/],
      ['?starttime=03/05/2026&endtime=03/01/2026', CALLBACK, 'Invalid time span selected'],
      ['', {}, /callback_url, a callback_email or both/],
      ['', { callback_url: 'ftp://example.com/x' }, 'Invalid callback URL'],
      ['', { callback_url: 'http://localhost:8080/x' }, /Invalid callback URL/],
      ['', { callback_url: 'http://127.0.0.1/x' }, /Invalid callback URL/],
      ['', { callback_url: 'http://10.0.0.1/x' }, /Invalid callback URL/],
      ['', { callback_url: 'http://169.254.169.254/latest/meta-data' }, /Invalid callback URL/],
      ['', { callback_url: 'http://user:pw@93.184.215.14/x' }, /Invalid callback URL/],
      ['', { callback_email: 'nobody' }, 'Invalid callback e-mail'],
      ['', { callback_url: 42 }, /callback_url/],
      ['', '{not json', /Invalid JSON/],
    ];
    for (const [query, body, message] of cases) {
      const response = await t.api('POST', `/organization/acme/exportlogs${query}`, { as: alice, body });
      expect(response.statusCode, `${query} ${JSON.stringify(body)}`).toBe(400);
      expect(response.json().error_message).toMatch(message);
    }
    const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM logentry WHERE kind = 'export_logs_failure'`);
    expect(rows[0].n).toBeGreaterThanOrEqual(9);
    // A private range named in SSRF_ALLOWED_HOSTS is allowed.
    expect((await t.api('POST', '/organization/acme/exportlogs', { as: alice, body: { callback_url: 'http://203.0.113.7/hook' } })).statusCode).toBe(200);
  });

  it('answers Quay’s authorization errors', async () => {
    expect((await t.api('POST', '/organization/acme/exportlogs', { body: CALLBACK })).statusCode).toBe(401);
    expect((await t.api('POST', '/organization/acme/exportlogs', { as: bob, body: CALLBACK })).statusCode).toBe(403);
    expect((await t.api('POST', '/organization/nowhere/exportlogs', { as: bob, body: CALLBACK })).statusCode).toBe(403);
    expect((await t.api('POST', '/organization/nowhere/exportlogs', { as: root, body: CALLBACK })).statusCode).toBe(404);
    expect((await t.api('POST', '/repository/acme/web/exportlogs', { as: bob, body: CALLBACK })).statusCode).toBe(403);
    expect((await t.api('POST', '/repository/acme/nothere/exportlogs', { as: alice, body: CALLBACK })).statusCode).toBe(404);
    expect((await t.api('POST', '/user/exportlogs', { body: CALLBACK })).statusCode).toBe(401);
  });

  it('is absent when FEATURE_LOG_EXPORT is off and Method not implemented under LOGS_MODEL splunk', async () => {
    expect((await gatedOff.api('POST', '/user/exportlogs', { as: alice, body: CALLBACK })).statusCode).toBe(404);
    const refused = await splunk.api('POST', '/user/exportlogs', { as: alice, body: CALLBACK });
    expect(refused.statusCode).toBe(501);
    expect(refused.json().error_message).toBe('Method not implemented');
    const { rows } = await splunk.db.query(`SELECT count(*)::int AS n FROM outbox`);
    expect(rows[0].n).toBe(0);
  });
});
