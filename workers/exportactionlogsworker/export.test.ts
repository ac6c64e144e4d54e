/**
 * Log exports end to end on real servers: the API request, the job it leaves in the outbox, the
 * worker streaming the document into LocalStorage (served at /exportedlogs) and RadosGW (a signed
 * URL), exactly the asked days, the callback (SSRF-checked, retried alone, sent once), the e-mail
 * to a loopback SMTP server, and the `timedout` status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry } from '../../shared/metrics/index.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { handleExport, type ExportServices } from './handler.ts';
import { CallbackFailedError } from './report.ts';
import { callbackReceiver, jobContext, radosgwOnly, smtpReceiver, takeExportJobs } from './test-support.ts';

const PASSWORD = 'a long enough password';
const alice: [string, string] = ['alice', PASSWORD];
let local: TestRegistry;
let rados: TestRegistry;

async function seed(t: TestRegistry): Promise<void> {
  await t.createUser('alice', PASSWORD);
  await t.createUser('bob', PASSWORD);
  await t.createOrganization('acme', 'alice');
  const repo = await t.createRepository('acme/web');
  const alice = (await t.db.query<{ id: number }>(`SELECT id FROM namespace WHERE username = 'alice'`)).rows[0]!.id;
  // 3600 entries, one every 4 minutes from March 1st: 360 a day for ten days.
  await t.db.query(
    `INSERT INTO logentry (kind, account_id, performer_id, repository_id, ip, metadata_json, datetime)
     SELECT 'push_repo', $1, CASE WHEN g % 2 = 0 THEN $2::bigint END, $3, '10.0.0.1', jsonb_build_object('index', g, 'tag', 't' || g),
            timestamptz '2026-03-01 00:00:00+00' + g * interval '4 minutes'
     FROM generate_series(0, 3599) g`, [repo.namespace_user_id, alice, repo.id]);
  // The last microsecond of the end day is in; another namespace's entries never are.
  await t.db.query(`INSERT INTO logentry (kind, account_id, repository_id, metadata_json, datetime) VALUES
    ('pull_repo', $1, $2, '{"edge": true}', '2026-03-05 23:59:59.999999+00'),
    ('pull_repo', $3, NULL, '{"other": true}', '2026-03-04 12:00:00+00')`, [repo.namespace_user_id, repo.id, alice]);
}

async function expectedCount(t: TestRegistry, repositoryOnly = false): Promise<number> {
  const { rows } = await t.db.query<{ count: number }>(
    `SELECT count(*)::bigint AS count FROM logentry e JOIN namespace n ON n.id = e.account_id
     WHERE n.username = 'acme' AND datetime >= '2026-03-03 00:00:00+00' AND datetime < '2026-03-06 00:00:00+00'
       AND kind <> 'export_logs_success' ${repositoryOnly ? 'AND repository_id IS NOT NULL' : ''}`);
  return rows[0]!.count;
}

/** The current value of a counter (by labels), or a histogram's observation count. */
async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const { type, values } = await registry.getSingleMetric(name)!.get();
  const wanted = String(type) === 'histogram' ? `${name}_count` : name;
  return (values as { value: number; labels: Record<string, string | number>; metricName?: string }[]).find((v) => (v.metricName ?? name) === wanted && Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
}

function services(t: TestRegistry): ExportServices {
  return { db: t.db, storage: t.deps.storage, config: t.deps.config };
}

interface ExportDocument {
  export_id: string;
  details: { start_time: string; end_time: string; namespace: string; repository: string | null };
  logs: Record<string, unknown>[];
}

function checkDocument(document: ExportDocument, exportId: string, count: number): void {
  expect(document.export_id).toBe(exportId);
  expect(document.details).toMatchObject({ start_time: 'Tue, 03 Mar 2026 00:00:00 -0000', end_time: 'Fri, 06 Mar 2026 00:00:00 -0000', namespace: 'acme' });
  expect(document.logs.at(-1)).toEqual({ terminator: true });
  expect(document.logs.filter((l) => 'terminator' in l)).toHaveLength(1);
  const entries = document.logs.slice(0, -1);
  expect(entries).toHaveLength(count);
  const days = new Set(entries.map((l) => String(l.datetime).slice(5, 16)));
  expect([...days].sort()).toEqual(['03 Mar 2026', '04 Mar 2026', '05 Mar 2026']);
  expect(entries[0]).toEqual({
    kind: 'push_repo', metadata: { index: 720, tag: 't720' }, ip: '10.0.0.1', datetime: 'Tue, 03 Mar 2026 00:00:00 -0000',
    performer: { kind: 'user', name: 'alice', is_robot: false, avatar: { name: 'alice', hash: '', color: '#000000', kind: 'user' } },
  });
  expect(entries[1]).not.toHaveProperty('performer');
  expect(entries.some((l) => (l.metadata as Record<string, unknown>).edge === true)).toBe(true);
  expect(entries.some((l) => (l.metadata as Record<string, unknown>).other === true)).toBe(false);
}

let smtp: Awaited<ReturnType<typeof smtpReceiver>>;
beforeAll(async () => {
  smtp = await smtpReceiver();
  const mail = { FEATURE_MAILING: true, MAIL_SERVER: '127.0.0.1', MAIL_PORT: smtp.port, MAIL_USE_TLS: false, SSRF_ALLOWED_HOSTS: ['127.0.0.1'] };
  local = await startTestRegistry({ label: 'logexport', config: mail });
  rados = await startTestRegistry({
    label: 'logexportrgw',
    config: {
      ...mail,
      ...radosgwOnly('logexport'),
    },
  });
  await seed(local);
  await seed(rados);
}, 60_000);
afterAll(async () => {
  await local?.close();
  await rados?.close();
  await smtp?.close();
});

describe('export to LocalStorage', () => {
  it('exports exactly the asked days, serves the file at /exportedlogs, calls back once and e-mails the link', async () => {
    const receiver = await callbackReceiver();
    try {
      const response = await local.api('POST', '/organization/acme/exportlogs?starttime=03/03/2026&endtime=03/05/2026', {
        as: alice, body: { callback_url: receiver.url, callback_email: 'ops@example.com' },
      });
      expect(response.statusCode).toBe(200);
      const exportId = response.json().export_id as string;
      const [job] = await takeExportJobs(local.db);
      expect(job).toMatchObject({ exportId, namespace: 'acme' });
      const metricsBefore = await Promise.all([metricValue('quayfleet_log_exports_total', { outcome: 'success' }), metricValue('quayfleet_log_export_rows_total'),
        metricValue('quayfleet_log_export_bytes_total'), metricValue('quayfleet_log_export_duration_seconds')]);
      await handleExport(job!, jobContext(services(local)));
      // Metrics: one success, its rows and bytes, one duration observation.
      const metricsAfter = await Promise.all([metricValue('quayfleet_log_exports_total', { outcome: 'success' }), metricValue('quayfleet_log_export_rows_total'),
        metricValue('quayfleet_log_export_bytes_total'), metricValue('quayfleet_log_export_duration_seconds')]);
      const { rows: [recorded] } = await local.db.query<{ rows: number; bytes: number }>(
        `SELECT rows_exported::int AS rows, bytes_exported::int AS bytes FROM logexport WHERE export_id = $1`, [exportId]);
      expect(metricsAfter.map((v, i) => v - metricsBefore[i]!)).toEqual([1, recorded!.rows, recorded!.bytes, 1]);
      expect(recorded!.bytes).toBeGreaterThan(0);

      expect(receiver.bodies).toHaveLength(1);
      const body = receiver.bodies[0]!;
      expect(body).toMatchObject({ export_id: exportId, status: 'success', namespace: 'acme', repository: null, start_time: '03/03/2026', end_time: '03/06/2026' });
      const url = new URL(body.exported_data_url as string);
      expect(url.pathname).toMatch(new RegExp(`^/exportedlogs/${exportId}-[0-9a-f-]{36}$`));
      const download = await local.app.inject({ method: 'GET', url: url.pathname });
      expect(download.statusCode).toBe(200);
      expect(download.headers['content-type']).toBe('application/json');
      checkDocument(download.json() as ExportDocument, exportId, await expectedCount(local));

      expect(smtp.messages.some((m) => m.includes('Subject: Export Action Logs Complete') && m.includes(exportId))).toBe(true);
      // A redelivered job reports nothing twice and exports nothing again.
      const before = smtp.messages.length;
      await handleExport(job!, jobContext(services(local), 2));
      expect(receiver.bodies).toHaveLength(1);
      expect(smtp.messages).toHaveLength(before);
      const { rows } = await local.db.query(`SELECT status, rows_exported FROM logexport WHERE export_id = $1`, [exportId]);
      expect(rows).toEqual([{ status: 'success', rows_exported: await expectedCount(local) }]);
    } finally {
      await receiver.close();
    }
  });

  it('exports one repository, and an empty range as a lone terminator', async () => {
    const receiver = await callbackReceiver();
    try {
      const response = await local.api('POST', '/repository/acme/web/exportlogs?starttime=03/03/2026&endtime=03/05/2026', { as: alice, body: { callback_url: receiver.url } });
      expect(response.statusCode).toBe(200);
      const empty = await local.api('POST', '/user/exportlogs?starttime=01/01/2020&endtime=01/02/2020', { as: alice, body: { callback_url: receiver.url } });
      expect(empty.statusCode).toBe(200);
      for (const job of await takeExportJobs(local.db)) await handleExport(job, jobContext(services(local)));
      const byId = new Map(receiver.bodies.map((b) => [b.export_id, b]));
      const repoBody = byId.get(response.json().export_id)!;
      expect(repoBody).toMatchObject({ status: 'success', repository: 'web' });
      const repoDoc = (await local.app.inject({ method: 'GET', url: new URL(repoBody.exported_data_url as string).pathname })).json() as ExportDocument;
      expect(repoDoc.details.repository).toBe('web');
      expect(repoDoc.logs).toHaveLength(await expectedCount(local, true) + 1);
      const emptyBody = byId.get(empty.json().export_id)!;
      const emptyDoc = (await local.app.inject({ method: 'GET', url: new URL(emptyBody.exported_data_url as string).pathname })).json() as ExportDocument;
      expect(emptyDoc.logs).toEqual([{ terminator: true }]);
    } finally {
      await receiver.close();
    }
  });

  it('retries only the callback when the receiver fails, and calls back once it answers', async () => {
    const receiver = await callbackReceiver([500, 503]);
    try {
      await local.api('POST', '/organization/acme/exportlogs?starttime=03/03/2026&endtime=03/03/2026', { as: alice, body: { callback_url: receiver.url } });
      const [job] = await takeExportJobs(local.db);
      await expect(handleExport(job!, jobContext(services(local), 1))).rejects.toBeInstanceOf(CallbackFailedError);
      const { rows: [first] } = await local.db.query(`SELECT url, status FROM logexport WHERE export_id = $1`, [job!.exportId]);
      expect(first.status).toBe('success');
      await expect(handleExport(job!, jobContext(services(local), 2))).rejects.toBeInstanceOf(CallbackFailedError);
      await handleExport(job!, jobContext(services(local), 3));
      expect(receiver.bodies).toHaveLength(3);
      expect(new Set(receiver.bodies.map((b) => b.exported_data_url))).toEqual(new Set([first.url]));
      const { rows: [after] } = await local.db.query(`SELECT callback_sent FROM logexport WHERE export_id = $1`, [job!.exportId]);
      expect(after.callback_sent).not.toBeNull();
    } finally {
      await receiver.close();
    }
  });

  it('skips a callback the SSRF rules refuse at delivery but still e-mails', async () => {
    await local.api('POST', '/organization/acme/exportlogs?starttime=03/03/2026&endtime=03/03/2026', { as: alice, body: { callback_email: 'ops@example.com' } });
    const [job] = await takeExportJobs(local.db);
    // The address was allowed when asked, and is no longer (the operator narrowed SSRF_ALLOWED_HOSTS).
    await local.db.query(`UPDATE logexport SET callback_url = 'http://169.254.169.254/latest/meta-data' WHERE export_id = $1`, [job!.exportId]);
    const before = smtp.messages.length;
    await handleExport(job!, jobContext(services(local)));
    expect(smtp.messages.length).toBe(before + 1);
    const { rows } = await local.db.query(`SELECT status, callback_sent IS NOT NULL AS skipped FROM logexport WHERE export_id = $1`, [job!.exportId]);
    expect(rows).toEqual([{ status: 'success', skipped: true }]);
  });

  it('reports timedout when the query-time limit is spent, leaving no file behind', async () => {
    const receiver = await callbackReceiver();
    try {
      await local.api('POST', '/organization/acme/exportlogs?starttime=03/01/2026&endtime=03/10/2026', { as: alice, body: { callback_url: receiver.url } });
      const [job] = await takeExportJobs(local.db);
      const config = { ...local.deps.config, quay: { ...local.deps.config.quay, EXPORT_ACTION_LOGS_MAXIMUM_QUERY_TIME_SECONDS: 0 } };
      const timedOutBefore = await metricValue('quayfleet_log_exports_total', { outcome: 'timedout' });
      await handleExport(job!, jobContext({ ...services(local), config }));
      expect(await metricValue('quayfleet_log_exports_total', { outcome: 'timedout' })).toBe(timedOutBefore + 1);
      expect(receiver.bodies).toEqual([expect.objectContaining({ export_id: job!.exportId, status: 'timedout', exported_data_url: null })]);
      const store = local.deps.storage.preferredStore();
      const left: string[] = [];
      for await (const object of store.list(`exportedactionlogs/${job!.exportId}`)) left.push(object.key);
      expect(left).toEqual([]);
    } finally {
      await receiver.close();
    }
  });

  it('reports timedout when EXPORT_ACTION_LOGS_MAXIMUM_SECONDS is spent, leaving no file behind', async () => {
    const receiver = await callbackReceiver();
    try {
      await local.api('POST', '/organization/acme/exportlogs?starttime=03/01/2026&endtime=03/10/2026', { as: alice, body: { callback_url: receiver.url } });
      const [job] = await takeExportJobs(local.db);
      const config = { ...local.deps.config, quay: { ...local.deps.config.quay, EXPORT_ACTION_LOGS_MAXIMUM_SECONDS: 0 } };
      await handleExport(job!, jobContext({ ...services(local), config }));
      expect(receiver.bodies).toEqual([expect.objectContaining({ export_id: job!.exportId, status: 'timedout', exported_data_url: null })]);
      const { rows } = await local.db.query(`SELECT status, error FROM logexport WHERE export_id = $1`, [job!.exportId]);
      expect(rows).toEqual([{ status: 'timedout', error: 'export took more than 0 ms' }]);
      const left: string[] = [];
      for await (const object of local.deps.storage.preferredStore().list(`exportedactionlogs/${job!.exportId}`)) left.push(object.key);
      expect(left).toEqual([]);
    } finally {
      await receiver.close();
    }
  });

  it('answers 404 for unknown or malformed export files', async () => {
    expect((await local.app.inject({ method: 'GET', url: '/exportedlogs/../../etc/passwd' })).statusCode).toBe(404);
    expect((await local.app.inject({ method: 'GET', url: `/exportedlogs/${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}-${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}` })).statusCode).toBe(404);
  });
});

describe('export to RadosGW', () => {
  it('links a signed URL that fetches the exact range until it expires', async () => {
    const receiver = await callbackReceiver();
    try {
      const response = await rados.api('POST', '/organization/acme/exportlogs?starttime=03/03/2026&endtime=03/05/2026', { as: alice, body: { callback_url: receiver.url } });
      const exportId = response.json().export_id as string;
      const [job] = await takeExportJobs(rados.db);
      const config = { ...rados.deps.config, quay: { ...rados.deps.config.quay, EXPORT_ACTION_LOGS_SECONDS: 2 } };
      await handleExport(job!, jobContext({ ...services(rados), config }));
      const url = receiver.bodies[0]!.exported_data_url as string;
      expect(url).toMatch(/X-Amz-Expires=2/);
      const fetched = await fetch(url);
      expect(fetched.status).toBe(200);
      checkDocument(await fetched.json() as ExportDocument, exportId, await expectedCount(rados));
      await new Promise((resolve) => setTimeout(resolve, 3500));
      expect((await fetch(url)).status).toBe(403);
    } finally {
      await receiver.close();
    }
  });
});
