/**
 * Date ranges are UTC days whatever the clocks around them say: the Node process runs in
 * America/Los_Angeles (UTC-8 in early March) and the database session in Pacific/Kiritimati
 * (UTC+14), and an export, the listing and the per-day aggregate of `03/03/2026` still take exactly
 * [2026-03-03 00:00Z, 2026-03-04 00:00Z): the first instant in, the last microsecond in, the
 * microsecond before and the instant after out, every date rendered as UTC (`-0000`). An empty day
 * exports as a lone terminator. Real Postgres and LocalStorage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { handleExport } from './handler.ts';
import { callbackReceiver, jobContext, takeExportJobs } from './test-support.ts';

const PASSWORD = 'a long enough password';
const alice: [string, string] = ['alice', PASSWORD];
const savedTz = process.env.TZ;
let t: TestRegistry;

// Around the day asked (03/03/2026): two out, four in; 10:00Z is already March 4th in Kiritimati.
const EDGES: [string, boolean][] = [
  ['2026-03-02 23:59:59.999999+00', false],
  ['2026-03-03 00:00:00+00', true],
  ['2026-03-03 09:59:59+00', true],
  ['2026-03-03 10:00:00+00', true],
  ['2026-03-03 23:59:59.999999+00', true],
  ['2026-03-04 00:00:00+00', false],
];

beforeAll(async () => {
  process.env.TZ = 'America/Los_Angeles';
  expect(new Date('2026-03-03T00:00:00Z').getHours()).toBe(16);
  t = await startTestRegistry({ label: 'logtz', config: { SSRF_ALLOWED_HOSTS: ['127.0.0.1'] } });
  const dbName = new URL(t.database.url).pathname.slice(1);
  await t.db.query(`ALTER DATABASE "${dbName}" SET timezone TO 'Pacific/Kiritimati'`);
  // Connections opened before the ALTER keep the old zone: replace them.
  const open = await Promise.all(Array.from({ length: t.db.totalCount }, () => t.db.connect()));
  for (const client of open) client.release(true);
  const { rows: [zone] } = await t.db.query<{ timezone: string }>(`SELECT current_setting('TimeZone') AS timezone`);
  expect(zone!.timezone).toBe('Pacific/Kiritimati');

  await t.createUser('alice', PASSWORD);
  await t.createOrganization('acme', 'alice');
  const { rows: [acme] } = await t.db.query<{ id: number }>(`SELECT id FROM namespace WHERE username = 'acme'`);
  for (const [i, [at]] of EDGES.entries()) {
    await t.db.query(`INSERT INTO logentry (kind, account_id, metadata_json, datetime) VALUES ('push_repo', $1, $2, $3)`, [acme!.id, { i }, at]);
  }
}, 60_000);
afterAll(async () => {
  await t?.close();
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

const inside = EDGES.flatMap(([, isIn], i) => (isIn ? [i] : []));

describe('UTC days under other time zones', () => {
  it('exports exactly the UTC day asked, dates in UTC', async () => {
    const receiver = await callbackReceiver();
    try {
      const response = await t.api('POST', '/organization/acme/exportlogs?starttime=03/03/2026&endtime=03/03/2026', { as: alice, body: { callback_url: receiver.url } });
      expect(response.statusCode).toBe(200);
      const { rows: [span] } = await t.db.query<{ start: string; end: string }>(
        `SELECT to_char(start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS start, to_char(end_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS end
         FROM logexport WHERE export_id = $1`, [response.json().export_id]);
      expect(span).toEqual({ start: '2026-03-03 00:00', end: '2026-03-04 00:00' });
      const [job] = await takeExportJobs(t.db);
      await handleExport(job!, jobContext({ db: t.db, storage: t.deps.storage, config: t.deps.config }));
      expect(receiver.bodies[0]).toMatchObject({ status: 'success', start_time: '03/03/2026', end_time: '03/04/2026' });
      const document = (await t.app.inject({ method: 'GET', url: new URL(receiver.bodies[0]!.exported_data_url as string).pathname })).json();
      expect(document.details).toMatchObject({ start_time: 'Tue, 03 Mar 2026 00:00:00 -0000', end_time: 'Wed, 04 Mar 2026 00:00:00 -0000' });
      const logs = (document.logs as { metadata: { i: number }; datetime: string }[]).slice(0, -1);
      expect(logs.map((l) => l.metadata.i)).toEqual(inside);
      expect(logs.map((l) => l.datetime)).toEqual([
        'Tue, 03 Mar 2026 00:00:00 -0000', 'Tue, 03 Mar 2026 09:59:59 -0000', 'Tue, 03 Mar 2026 10:00:00 -0000', 'Tue, 03 Mar 2026 23:59:59 -0000',
      ]);
    } finally {
      await receiver.close();
    }
  });

  it('an empty day exports a lone terminator', async () => {
    const receiver = await callbackReceiver();
    try {
      await t.api('POST', '/organization/acme/exportlogs?starttime=03/10/2026&endtime=03/10/2026', { as: alice, body: { callback_url: receiver.url } });
      const [job] = await takeExportJobs(t.db);
      await handleExport(job!, jobContext({ db: t.db, storage: t.deps.storage, config: t.deps.config }));
      const document = (await t.app.inject({ method: 'GET', url: new URL(receiver.bodies[0]!.exported_data_url as string).pathname })).json();
      expect(document.logs).toEqual([{ terminator: true }]);
    } finally {
      await receiver.close();
    }
  });

  it('lists and aggregates by UTC day', async () => {
    const listed = (await t.api('GET', '/organization/acme/logs?starttime=03/03/2026&endtime=03/03/2026', { as: alice })).json();
    expect(listed).toMatchObject({ start_time: 'Tue, 03 Mar 2026 00:00:00 -0000', end_time: 'Wed, 04 Mar 2026 00:00:00 -0000' });
    expect((listed.logs as { metadata: { i: number } }[]).map((l) => l.metadata.i).sort()).toEqual(inside);
    const aggregated = (await t.api('GET', '/organization/acme/aggregatelogs?starttime=03/02/2026&endtime=03/04/2026', { as: alice })).json();
    expect(aggregated.aggregated).toEqual(expect.arrayContaining([
      { kind: 'push_repo', count: 1, datetime: 'Mon, 02 Mar 2026 00:00:00 -0000' },
      { kind: 'push_repo', count: 4, datetime: 'Tue, 03 Mar 2026 00:00:00 -0000' },
      { kind: 'push_repo', count: 1, datetime: 'Wed, 04 Mar 2026 00:00:00 -0000' },
    ]));
    expect(aggregated.aggregated).toHaveLength(3);
  });
});
