/**
 * Exported files removed after their retention, on real storage (LocalStorage and RadosGW): the
 * export records its file and expiry, the local link stops at the expiry, the sweep deletes only
 * due files (batched, from the database, no listing), a dead attempt's leftover is removed, and a
 * retry rewrites the file it claimed instead of leaving a second one. Time passes by moving
 * `expires_at`, not by sleeping.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError } from '../../shared/storage/errors.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { exportactionlogs } from '../../queues/exportactionlogs.ts';
import { schedulesOf } from '../../shared/runtime/worker.ts';
import { EXPIRY_BATCH, removeExpiredExports } from './expiry.ts';
import { handleExport, type ExportServices } from './handler.ts';
import { claimExportFile } from './rows.ts';
import { exportactionlogsworker } from './index.ts';
import { jobContext, radosgwOnly, takeExportJobs } from './test-support.ts';

const PASSWORD = 'a long enough password';
const alice: [string, string] = ['alice', PASSWORD];
let local: TestRegistry;
let rados: TestRegistry;

async function seed(t: TestRegistry): Promise<void> {
  await t.createUser('alice', PASSWORD);
  await t.createOrganization('acme', 'alice');
  const repo = await t.createRepository('acme/web');
  await t.db.query(
    `INSERT INTO logentry (kind, account_id, repository_id, metadata_json, datetime)
     SELECT 'push_repo', $1, $2, jsonb_build_object('index', g), timestamptz '2026-03-03 00:00:00+00' + g * interval '1 minute'
     FROM generate_series(0, 99) g`, [repo.namespace_user_id, repo.id]);
}

const services = (t: TestRegistry): ExportServices => ({ db: t.db, storage: t.deps.storage, config: t.deps.config });

/** Runs one export through the API and the worker; returns its id and recorded file. */
async function exportOnce(t: TestRegistry): Promise<{ exportId: string; key: string; location: string; url: string }> {
  const response = await t.api('POST', '/organization/acme/exportlogs?starttime=03/03/2026&endtime=03/03/2026', { as: alice, body: { callback_email: 'ops@example.com' } });
  expect(response.statusCode).toBe(200);
  const [job] = await takeExportJobs(t.db);
  await handleExport(job!, jobContext(services(t)));
  const { rows: [row] } = await t.db.query<{ result_key: string; location: string; url: string; ttl: number }>(
    `SELECT result_key, location, url, extract(epoch FROM expires_at - finished)::int AS ttl FROM logexport WHERE export_id = $1`, [job!.exportId]);
  // Kept for the link's lifetime: EXPORT_ACTION_LOGS_SECONDS (Quay's default 3600 s).
  expect(row!.ttl).toBe(3600);
  return { exportId: job!.exportId, key: row!.result_key, location: row!.location, url: row!.url };
}

async function expire(t: TestRegistry, exportIds: readonly string[]): Promise<void> {
  await t.db.query(`UPDATE logexport SET expires_at = now() - interval '1 second' WHERE export_id = ANY($1::uuid[])`, [exportIds]);
}

async function exists(t: TestRegistry, location: string, key: string): Promise<boolean> {
  try {
    await t.deps.storage.store(location).stat(key);
    return true;
  } catch (error) {
    if (error instanceof NotFoundError) return false;
    throw error;
  }
}

beforeAll(async () => {
  local = await startTestRegistry({ label: 'logexpiry' });
  rados = await startTestRegistry({
    label: 'logexpiryrgw',
    config: radosgwOnly('logexpiry'),
  });
  await seed(local);
  await seed(rados);
}, 60_000);
afterAll(async () => {
  await local?.close();
  await rados?.close();
});

describe('exported file retention', () => {
  it('LocalStorage: the link works until the expiry, then answers 404, and the sweep deletes the file once', async () => {
    const file = await exportOnce(local);
    const path = new URL(file.url).pathname;
    expect((await local.app.inject({ method: 'GET', url: path })).statusCode).toBe(200);
    // Not yet due: the sweep leaves it.
    expect(await removeExpiredExports(jobContext(services(local)))).toBe(0);
    expect(await exists(local, file.location, file.key)).toBe(true);

    await expire(local, [file.exportId]);
    expect((await local.app.inject({ method: 'GET', url: path })).statusCode).toBe(404);
    expect(await removeExpiredExports(jobContext(services(local)))).toBe(1);
    expect(await exists(local, file.location, file.key)).toBe(false);
    const { rows } = await local.db.query(`SELECT removed IS NOT NULL AS removed FROM logexport WHERE export_id = $1`, [file.exportId]);
    expect(rows).toEqual([{ removed: true }]);
    expect(await removeExpiredExports(jobContext(services(local)))).toBe(0);
  });

  it('RadosGW: the object behind a still-valid signed URL is deleted at the expiry', async () => {
    const file = await exportOnce(rados);
    expect((await fetch(file.url)).status).toBe(200);
    await expire(rados, [file.exportId]);
    expect(await removeExpiredExports(jobContext(services(rados)))).toBe(1);
    expect(await exists(rados, file.location, file.key)).toBe(false);
    expect((await fetch(file.url)).status).toBe(404);
  });

  it('removes a dead attempt\'s file, and a retry rewrites the file it claimed rather than leaving a second', async () => {
    const response = await rados.api('POST', '/organization/acme/exportlogs?starttime=03/03/2026&endtime=03/03/2026', { as: alice, body: { callback_email: 'ops@example.com' } });
    const exportId = response.json().export_id as string;
    const [job] = await takeExportJobs(rados.db);
    const storage = rados.deps.storage;
    // An attempt claimed its file, completed the upload, and died before recording the result.
    const claimed = await claimExportFile(rados.db, exportId, { key: `exportedactionlogs/${exportId}-${randomUUID()}`, location: storage.preferredLocation }, storage.locations, 60);
    await storage.store(claimed.location).put(claimed.key, Buffer.from('partial'));
    // The retry writes the same key.
    await handleExport(job!, jobContext(services(rados), 2));
    const { rows: [row] } = await rados.db.query(`SELECT status, result_key FROM logexport WHERE export_id = $1`, [exportId]);
    expect(row).toEqual({ status: 'success', result_key: claimed.key });
    const listed: string[] = [];
    for await (const object of storage.store(claimed.location).list(`exportedactionlogs/${exportId}`)) listed.push(object.key);
    expect(listed).toEqual([claimed.key]);

    // An attempt that never finished: once its hold passes, its leftover goes too.
    const abandoned = randomUUID();
    const { rows: [ns] } = await rados.db.query<{ id: number }>(`SELECT id FROM namespace WHERE username = 'acme'`);
    await rados.db.query(`INSERT INTO logexport (export_id, namespace_id, start_time, end_time, status) VALUES ($1, $2, now(), now(), 'queued')`, [abandoned, ns!.id]);
    const left = await claimExportFile(rados.db, abandoned, { key: `exportedactionlogs/${abandoned}-${randomUUID()}`, location: storage.preferredLocation }, storage.locations, 60);
    await storage.store(left.location).put(left.key, Buffer.from('{'));
    await expire(rados, [abandoned]);
    expect(await removeExpiredExports(jobContext(services(rados)))).toBe(1);
    expect(await exists(rados, left.location, left.key)).toBe(false);
    expect(await exists(rados, claimed.location, claimed.key)).toBe(true);
  });

  it('sweeps in batches from the partial index, skipping locations that are no longer configured', async () => {
    const storage = local.deps.storage;
    const { rows: [ns] } = await local.db.query<{ id: number }>(`SELECT id FROM namespace WHERE username = 'acme'`);
    const count = EXPIRY_BATCH * 2 + 5;
    const ids = Array.from({ length: count }, () => randomUUID());
    const keys = ids.map((id) => `exportedactionlogs/${id}-${randomUUID()}`);
    await local.db.query(
      `INSERT INTO logexport (export_id, namespace_id, start_time, end_time, status, result_key, location, finished, expires_at)
       SELECT id, $2, now(), now(), 'success', key, $4, now(), now() - interval '1 minute'
       FROM unnest($1::uuid[], $3::text[]) AS t(id, key)`, [ids, ns!.id, keys, storage.preferredLocation]);
    await Promise.all(keys.map((key) => storage.preferredStore().put(key, Buffer.from('{}'))));
    const gone = randomUUID();
    await local.db.query(
      `INSERT INTO logexport (export_id, namespace_id, start_time, end_time, status, result_key, location, expires_at)
       VALUES ($1, $2, now(), now(), 'success', 'exportedactionlogs/elsewhere', 'decommissioned', now() - interval '1 minute')`, [gone, ns!.id]);

    const plan = await local.db.connect();
    try {
      await plan.query('BEGIN');
      await plan.query('SET LOCAL enable_seqscan = off');
      const { rows } = await plan.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT export_id FROM logexport WHERE result_key IS NOT NULL AND removed IS NULL AND expires_at <= now() AND location = ANY($1::text[]) ORDER BY expires_at LIMIT 100`,
        [storage.locations]);
      expect(rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('logexport_due_removal');
      await plan.query('ROLLBACK');
    } finally {
      plan.release();
    }

    expect(await removeExpiredExports(jobContext(services(local)))).toBe(count);
    const stillThere = await Promise.all(keys.map((key) => exists(local, storage.preferredLocation, key)));
    expect(stillThere.filter(Boolean)).toHaveLength(0);
    const { rows } = await local.db.query(`SELECT removed IS NULL AS waiting FROM logexport WHERE export_id = $1`, [gone]);
    expect(rows).toEqual([{ waiting: true }]);
  });

  it('runs from the worker\'s schedule: a tick every 5 minutes (or the retention, when shorter) on the export queue', async () => {
    const [tick] = schedulesOf(exportactionlogsworker, local.deps.config);
    expect(tick).toMatchObject({ id: 'exportactionlogs-expiry', everySeconds: 300 });
    const short = { ...local.deps.config, quay: { ...local.deps.config.quay, EXPORT_ACTION_LOGS_SECONDS: 60 } };
    expect(schedulesOf(exportactionlogsworker, short)[0]).toMatchObject({ everySeconds: 60 });
    const file = await exportOnce(local);
    await expire(local, [file.exportId]);
    await exportactionlogsworker.handler(exportactionlogs.parse(tick!.payload), jobContext(services(local)));
    expect(await exists(local, file.location, file.key)).toBe(false);
  });
});
