/**
 * Exported files removed after their retention, on real storage (LocalStorage and RadosGW) and a
 * real Redis: each change of a file's expiry writes a delayed removal job for that moment (outbox,
 * same transaction); the job removes the file once due (idempotent, deferred when the expiry moved,
 * dead-lettered for a location this process lacks); a dead attempt's leftover goes when its hold
 * ends; and a started worker drops the retired 5-minute sweep, re-creates lost removal jobs from
 * `logexport`, and keeps no periodic tick. Time passes by moving `expires_at`, not by sleeping.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportactionlogs, type ExportActionLogsPayload, type ExportFileRemovalPayload } from '../../queues/exportactionlogs.ts';
import { DeferError, PermanentFailureError } from '../../shared/runtime/outcomes.ts';
import { createProducer } from '../../shared/runtime/producer.ts';
import { runWorker, type RunningWorker } from '../../shared/runtime/run-worker.ts';
import { captureLogger, waitFor } from '../../shared/runtime/test-support/index.ts';
import { NotFoundError } from '../../shared/storage/errors.ts';
import { REDIS_URL, uniquePrefix } from '../../test/helpers/redis.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { removeExportFile, RETIRED_SWEEP_SCHEDULE } from './expiry.ts';
import { handleExport, type ExportServices } from './handler.ts';
import { exportactionlogsworker } from './index.ts';
import { claimExportFile } from './rows.ts';
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

/** The removal jobs waiting in the outbox (then removed, as a relay would), with their run time. */
async function takeRemovalJobs(t: TestRegistry): Promise<{ payload: ExportFileRemovalPayload; jobId: string; runAt: Date }[]> {
  const { rows } = await t.db.query<{ payload: unknown; job_id: string; run_at: Date }>(
    `DELETE FROM outbox WHERE queue_name = $1 AND payload ? 'removeExportFile' RETURNING payload, job_id, run_at`, [exportactionlogs.name]);
  return rows.map((r) => ({ payload: exportactionlogs.parse(r.payload) as ExportFileRemovalPayload, jobId: r.job_id, runAt: r.run_at }))
    .sort((a, b) => a.runAt.getTime() - b.runAt.getTime());
}

/** Runs one export through the API and the worker; returns its id, recorded file and removal jobs. */
async function exportOnce(t: TestRegistry) {
  const response = await t.api('POST', '/organization/acme/exportlogs?starttime=03/03/2026&endtime=03/03/2026', { as: alice, body: { callback_email: 'ops@example.com' } });
  expect(response.statusCode).toBe(200);
  const [job] = await takeExportJobs(t.db);
  await handleExport(job!, jobContext(services(t)));
  const { rows: [row] } = await t.db.query<{ result_key: string; location: string; url: string; ttl: number; expires_at: Date }>(
    `SELECT result_key, location, url, expires_at, extract(epoch FROM expires_at - finished)::int AS ttl FROM logexport WHERE export_id = $1`, [job!.exportId]);
  // Kept for the link's lifetime: EXPORT_ACTION_LOGS_SECONDS (Quay's default 3600 s).
  expect(row!.ttl).toBe(3600);
  return { exportId: job!.exportId, key: row!.result_key, location: row!.location, url: row!.url, expiresAt: row!.expires_at, removals: await takeRemovalJobs(t) };
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

const removal = (exportId: string): ExportFileRemovalPayload => ({ v: 1, removeExportFile: exportId, dueAtMs: 0 });

beforeAll(async () => {
  local = await startTestRegistry({ label: 'logexpiry' });
  rados = await startTestRegistry({ label: 'logexpiryrgw', config: radosgwOnly('logexpiry') });
  await seed(local);
  await seed(rados);
}, 60_000);
afterAll(async () => {
  await local?.close();
  await rados?.close();
});

describe('exported file retention', () => {
  it('an export writes a delayed removal job for each expiry it sets: the hold at the claim, then the retention at the end', async () => {
    const file = await exportOnce(local);
    const holdS = local.deps.config.quay.EXPORT_ACTION_LOGS_MAXIMUM_SECONDS + local.deps.config.quay.EXPORT_ACTION_LOGS_SECONDS;
    expect(file.removals).toHaveLength(2);
    const [atFinish, atClaim] = file.removals;
    expect(atFinish!.runAt.getTime()).toBe(file.expiresAt.getTime());
    expect(atFinish!.payload).toEqual({ v: 1, removeExportFile: file.exportId, dueAtMs: file.expiresAt.getTime() });
    expect(atFinish!.jobId).toBe(`exportactionlogs/remove/${file.exportId}/${file.expiresAt.getTime()}`);
    expect((atClaim!.runAt.getTime() - atFinish!.runAt.getTime()) / 1000).toBeGreaterThan(holdS - 3600 - 60);
  });

  it('LocalStorage: the link works until the expiry; a job before it defers to the expiry; at it the file goes, once', async () => {
    const file = await exportOnce(local);
    const path = new URL(file.url).pathname;
    expect((await local.app.inject({ method: 'GET', url: path })).statusCode).toBe(200);
    const early = await removeExportFile(removal(file.exportId), jobContext(services(local))).catch((error: unknown) => error);
    expect(early).toBeInstanceOf(DeferError);
    expect((early as DeferError).delayMs).toBeGreaterThan(3500_000);
    expect(await exists(local, file.location, file.key)).toBe(true);

    await expire(local, [file.exportId]);
    expect((await local.app.inject({ method: 'GET', url: path })).statusCode).toBe(404);
    await removeExportFile(removal(file.exportId), jobContext(services(local)));
    expect(await exists(local, file.location, file.key)).toBe(false);
    const { rows } = await local.db.query(`SELECT removed IS NOT NULL AS removed FROM logexport WHERE export_id = $1`, [file.exportId]);
    expect(rows).toEqual([{ removed: true }]);
    // The other job (the claim's hold), or a redelivery: nothing left to do.
    await removeExportFile(removal(file.exportId), jobContext(services(local)));
  });

  it('RadosGW: the object behind a still-valid signed URL is deleted at the expiry', async () => {
    const file = await exportOnce(rados);
    expect((await fetch(file.url)).status).toBe(200);
    await expire(rados, [file.exportId]);
    await removeExportFile(removal(file.exportId), jobContext(services(rados)));
    expect(await exists(rados, file.location, file.key)).toBe(false);
    expect((await fetch(file.url)).status).toBe(404);
  });

  it('removes a dead attempt\'s file when its hold ends, and a retry rewrites the file it claimed rather than leaving a second', async () => {
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
    await takeRemovalJobs(rados);

    // An attempt that never finished: its claim wrote the removal job for the end of its hold.
    const abandoned = randomUUID();
    const { rows: [ns] } = await rados.db.query<{ id: number }>(`SELECT id FROM namespace WHERE username = 'acme'`);
    await rados.db.query(`INSERT INTO logexport (export_id, namespace_id, start_time, end_time, status) VALUES ($1, $2, now(), now(), 'queued')`, [abandoned, ns!.id]);
    const left = await claimExportFile(rados.db, abandoned, { key: `exportedactionlogs/${abandoned}-${randomUUID()}`, location: storage.preferredLocation }, storage.locations, 60);
    await storage.store(left.location).put(left.key, Buffer.from('{'));
    const [hold] = await takeRemovalJobs(rados);
    expect(hold!.payload.removeExportFile).toBe(abandoned);
    expect(Math.abs(hold!.runAt.getTime() - Date.now() - 60_000)).toBeLessThan(10_000);
    await expire(rados, [abandoned]);
    await removeExportFile(hold!.payload, jobContext(services(rados)));
    expect(await exists(rados, left.location, left.key)).toBe(false);
    expect(await exists(rados, claimed.location, claimed.key)).toBe(true);
  });

  it('a file in a location this process does not configure is dead-lettered, not deleted elsewhere', async () => {
    const { rows: [ns] } = await local.db.query<{ id: number }>(`SELECT id FROM namespace WHERE username = 'acme'`);
    const gone = randomUUID();
    await local.db.query(
      `INSERT INTO logexport (export_id, namespace_id, start_time, end_time, status, result_key, location, expires_at)
       VALUES ($1, $2, now(), now(), 'success', 'exportedactionlogs/elsewhere', 'decommissioned', now() - interval '1 minute')`, [gone, ns!.id]);
    await expect(removeExportFile(removal(gone), jobContext(services(local)))).rejects.toBeInstanceOf(PermanentFailureError);
    const { rows } = await local.db.query(`SELECT removed IS NULL AS waiting FROM logexport WHERE export_id = $1`, [gone]);
    expect(rows).toEqual([{ waiting: true }]);
  });

  it('a started worker removes the retired sweep, re-creates lost removal jobs from logexport, runs the due ones, and keeps no tick', async () => {
    // Earlier tests' files are out of the way: only this test's two are pending.
    await local.db.query(`UPDATE logexport SET removed = now() WHERE removed IS NULL`);
    const due = await exportOnce(local);
    const later = await exportOnce(local);
    await expire(local, [due.exportId]);
    const { rows: [dueRow] } = await local.db.query<{ expires_at: Date }>(`SELECT expires_at FROM logexport WHERE export_id = $1`, [due.exportId]);
    await local.db.query(`DELETE FROM outbox`); // Redis "lost" every removal job: only logexport knows.

    const prefix = uniquePrefix('logexpiry');
    const producer = createProducer({ url: REDIS_URL, prefix });
    const queue = producer.queue(exportactionlogs.name);
    // What an earlier version left in Redis: the 5-minute sweep.
    await queue.upsertJobScheduler(RETIRED_SWEEP_SCHEDULE, { every: 300_000 }, { name: RETIRED_SWEEP_SCHEDULE, data: { v: 1, sweep: 'expired-files' } });
    let worker: RunningWorker | undefined;
    try {
      const started = await runWorker(exportactionlogsworker, {
        config: local.deps.config, services: services(local), redis: { url: REDIS_URL, prefix }, log: captureLogger().log,
      });
      expect(started.disabled).toBe(false);
      worker = started as RunningWorker;
      expect(await queue.getJobSchedulers()).toEqual([]);
      const removed = async () => (await local.db.query<{ export_id: string }>(
        `SELECT export_id FROM logexport WHERE export_id = ANY($1::uuid[]) AND removed IS NOT NULL`, [[due.exportId, later.exportId]])).rows;
      await waitFor(async () => (await removed()).length > 0, 15_000);
      expect(await removed()).toEqual([{ export_id: due.exportId }]);
      expect(await exists(local, due.location, due.key)).toBe(false);
      expect(await exists(local, later.location, later.key)).toBe(true);
      const done = await queue.getJob(`exportactionlogs/remove/${due.exportId}/${dueRow!.expires_at.getTime()}`);
      expect(await done?.getState()).toBe('completed');
      // The later file waits in Redis as a delayed job at its expiry; nothing else is scheduled.
      const delayed = await queue.getJobs(['delayed']);
      expect(delayed.map((j) => (j.data as ExportActionLogsPayload))).toEqual([{ v: 1, removeExportFile: later.exportId, dueAtMs: later.expiresAt.getTime() }]);
      expect(Math.abs(delayed[0]!.timestamp + delayed[0]!.delay - later.expiresAt.getTime())).toBeLessThan(5_000);
      expect(await queue.getJobCounts('wait', 'active', 'prioritized')).toEqual({ wait: 0, active: 0, prioritized: 0 });
    } finally {
      await worker?.stop(5000);
      await queue.obliterate({ force: true });
      await producer.close();
    }
  });
});
