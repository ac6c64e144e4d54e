/**
 * Log rotation on a real Postgres and LocalStorage: stale entries are archived as gzip'd JSON
 * then deleted, newer ones stay, a run interrupted after writing an archive (the SIGKILL window,
 * simulated) or a rotating process really SIGKILLed loses and duplicates nothing, concurrent runs
 * do not overlap, and the gate refuses incomplete settings.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../shared/config/index.ts';
import { registry } from '../../shared/metrics/index.ts';
import { createDistributedStorage, type DistributedStorage } from '../../shared/storage/distributed.ts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { rotateLogs, rotationCutoff, ROTATION_BATCH_ROWS } from './handler.ts';
import { logrotateworker } from './index.ts';

let database: TestDatabase;
let dir: string;
let config: Config;
let storage: DistributedStorage;
const NOW = Date.parse('2026-06-01T00:00:00Z');

beforeAll(async () => {
  database = await createTestDatabase('logrotate');
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'quayfleet-logrotate-'));
  config = parseConfig({
    DISTRIBUTED_STORAGE_CONFIG: { local_us: ['LocalStorage', { storage_path: dir }] }, DISTRIBUTED_STORAGE_PREFERENCE: ['local_us'],
    FEATURE_ACTION_LOG_ROTATION: true, ACTION_LOG_ARCHIVE_LOCATION: 'local_us', ACTION_LOG_ARCHIVE_PATH: 'actionlogarchive/', ACTION_LOG_ROTATION_THRESHOLD: '30d',
  });
  storage = await createDistributedStorage(config.quay);
});
afterAll(async () => {
  await storage?.close();
  await database?.drop();
  await fs.rm(dir, { recursive: true, force: true });
});

async function archived(): Promise<Record<string, unknown>[]> {
  const entries: Record<string, unknown>[] = [];
  const store = storage.store('local_us');
  for await (const object of store.list('actionlogarchive/')) {
    expect(object.key).toMatch(/^actionlogarchive\/\d+-\d+-logentry3\.txt\.gz$/);
    const chunks: Buffer[] = [];
    for await (const chunk of await store.get(object.key)) chunks.push(chunk as Buffer);
    entries.push(...JSON.parse(gunzipSync(Buffer.concat(chunks)).toString('utf8')) as Record<string, unknown>[]);
  }
  return entries;
}

describe('log rotation', () => {
  it('archives entries older than the threshold in id windows, then deletes only them', async () => {
    // 12,000 daily-spread entries over 120 days before NOW: those older than 30 days go.
    await database.pool.query(
      `INSERT INTO logentry (kind, account_id, metadata_json, datetime)
       SELECT 'push_repo', 1, jsonb_build_object('i', g), timestamptz '2026-06-01 00:00:00+00' - (g * interval '864 seconds')
       FROM generate_series(1, 12000) g`);
    const cutoff = rotationCutoff(config, NOW);
    expect(cutoff.toISOString()).toBe('2026-05-02T00:00:00.000Z');
    const { rows: [{ stale }] } = await database.pool.query(`SELECT count(*)::int AS stale FROM logentry WHERE datetime < $1`, [cutoff]);
    const archivedTotal = async () => (await registry.getSingleMetric('quayfleet_logs_archived_rows_total')!.get()).values[0]?.value ?? 0;
    const archivedBefore = await archivedTotal();
    const result = await rotateLogs(database.pool, storage, config, { cutoff, deadlineMs: Date.now() + 60_000 });
    expect(result).toMatchObject({ done: true, rows: stale });
    expect(await archivedTotal()).toBe(archivedBefore + stale);
    expect((result as { files: number }).files).toBeGreaterThanOrEqual(Math.ceil(stale / ROTATION_BATCH_ROWS));
    const { rows: left } = await database.pool.query(`SELECT min(datetime) AS oldest, count(*)::int AS n FROM logentry`);
    expect(left[0].n).toBe(12000 - stale);
    expect(left[0].oldest >= cutoff).toBe(true);
    const entries = await archived();
    expect(entries).toHaveLength(stale);
    expect(entries[0]).toMatchObject({ kind: 'push_repo', account_id: 1, performer_id: null, repository_id: null, ip: null });
    expect(JSON.parse(entries[0]!.metadata_json as string)).toHaveProperty('i');
  });

  it('deletes nothing it has not archived: a run stopped after its write repeats that window', async () => {
    await database.pool.query(`DELETE FROM logentry`);
    await database.pool.query(
      `INSERT INTO logentry (kind, account_id, metadata_json, datetime)
       SELECT 'pull_repo', 2, jsonb_build_object('k', g), timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, 100) g`);
    const store = storage.store('local_us');
    const failing = new Proxy(storage, {
      get: (target, prop) => (prop === 'store' ? () => new Proxy(store, {
        get: (s, p) => (p === 'put' ? async () => { throw new Error('disk full'); } : Reflect.get(s, p)),
      }) : Reflect.get(target, prop)),
    });
    await expect(rotateLogs(database.pool, failing, config, { cutoff: new Date(NOW), deadlineMs: Date.now() + 10_000 })).rejects.toThrow('disk full');
    expect((await database.pool.query(`SELECT count(*)::int AS n FROM logentry`)).rows[0].n).toBe(100);
    expect(await rotateLogs(database.pool, storage, config, { cutoff: new Date(NOW), deadlineMs: Date.now() + 10_000 })).toMatchObject({ done: true, rows: 100 });
  });

  it('loses and duplicates nothing when the rotating process is SIGKILLed mid-run', async () => {
    await database.pool.query(`DELETE FROM logentry`);
    await fs.rm(path.join(dir, 'actionlogarchive'), { recursive: true, force: true });
    const total = ROTATION_BATCH_ROWS * 12;
    await database.pool.query(
      `INSERT INTO logentry (kind, account_id, metadata_json, datetime)
       SELECT 'pull_repo', 3, jsonb_build_object('n', g), timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, $1::int) g`, [total]);
    const child = spawn(process.execPath, ['--import', 'tsx', 'workers/logrotateworker/kill-child.ts', database.url, dir, new Date(NOW).toISOString()], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    // Killed once its second archive is written: mid-run, somewhere between a write and the next.
    const archiveDir = path.join(dir, 'actionlogarchive');
    for (;;) {
      const written = await fs.readdir(archiveDir).catch(() => [] as string[]);
      if (written.length >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const { rows: [{ left }] } = await database.pool.query(`SELECT count(*)::int AS left FROM logentry`);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(total);

    // The next run finishes the job once Postgres has ended the killed session, and its lock with
    // it (a statement in flight, such as the DELETE after an archive, runs to its end first).
    let result: Awaited<ReturnType<typeof rotateLogs>> = 'locked';
    for (const deadline = Date.now() + 30_000; result === 'locked' && Date.now() < deadline;) {
      await database.pool.query(`SELECT pg_sleep(0.05) WHERE EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory')`);
      result = await rotateLogs(database.pool, storage, config, { cutoff: new Date(NOW), deadlineMs: Date.now() + 60_000 });
    }
    expect(result).toMatchObject({ done: true });
    expect((await database.pool.query(`SELECT count(*)::int AS n FROM logentry`)).rows[0].n).toBe(0);
    const numbers = (await archived()).map((e) => (JSON.parse(e.metadata_json as string) as { n: number }).n);
    expect(numbers).toHaveLength(total);
    expect(new Set(numbers).size).toBe(total);
  }, 120_000);

  it('lets one rotation run at a time', async () => {
    const holder = await database.pool.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(hashtextextended('actionlogrotation', 0))`);
      expect(await rotateLogs(database.pool, storage, config, { cutoff: new Date(NOW), deadlineMs: Date.now() + 1000 })).toBe('locked');
    } finally {
      await holder.query(`SELECT pg_advisory_unlock_all()`);
      holder.release();
    }
  });

  it('is gated on FEATURE_ACTION_LOG_ROTATION, both archive keys and a known location', () => {
    const base = { DISTRIBUTED_STORAGE_CONFIG: { local_us: ['LocalStorage', { storage_path: dir }] } };
    expect(logrotateworker.gate!(parseConfig(base)).enabled).toBe(false);
    expect(logrotateworker.gate!(parseConfig({ ...base, FEATURE_ACTION_LOG_ROTATION: true, ACTION_LOG_ARCHIVE_LOCATION: 'local_us' })).reason).toMatch(/must both be set/);
    expect(logrotateworker.gate!(parseConfig({ ...base, FEATURE_ACTION_LOG_ROTATION: true, ACTION_LOG_ARCHIVE_LOCATION: 'elsewhere', ACTION_LOG_ARCHIVE_PATH: 'a/' })).reason).toMatch(/not a location/);
    expect(logrotateworker.gate!(config).enabled).toBe(true);
    expect(logrotateworker.gate!(parseConfig({ ...base, FEATURE_ACTION_LOG_ROTATION: true, ACTION_LOG_ARCHIVE_LOCATION: 'local_us', ACTION_LOG_ARCHIVE_PATH: 'a/', LOGS_MODEL: 'splunk' })).reason).toMatch(/Method not implemented/);
  });
});
