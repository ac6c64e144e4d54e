/**
 * The replication commands: backfill after jobs were lost (or a location was added), status as
 * the fact of "done", and `storage remove-location` refusing, answering n, answering y; the last
 * ones as operators run them, in a child process.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagestoragereplication } from '../../queues/imagestoragereplication.ts';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { backfillReplication, replicationStatusReport } from '../../workers/storagereplicationworker/backfill.ts';
import { REDIS_URL } from '../helpers/redis.ts';
import { createGeoFixture, locations, type GeoFixture } from './fixture.ts';
import { sha256 } from '../../registry/v2/test-support.ts';

const CLI = path.resolve(import.meta.dirname, '../../bin/quayfleet.js');
// The CLI uses the default queue prefix: a Redis database of its own keeps it off other runs' queues.
const CLI_REDIS_URL = `${REDIS_URL.replace(/\/\d*$/, '')}/11`;

function run(args: string[], env: Record<string, string>, input = ''): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...env }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  child.stdin.end(input);
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

describe('replication commands', { timeout: 240_000 }, () => {
  let f: GeoFixture;
  let dir: string;
  let entries: Record<string, [string, Record<string, unknown>]>;
  const pushed: string[] = [];
  beforeAll(async () => {
    entries = { usstorage: locations.radosgw(), eustorage: locations.azurite() };
    f = await createGeoFixture('georepcli', entries);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qf-georep-cli-'));
    const client = await f.client('ivy/app');
    const config = Buffer.from(`{"n":"${randomBytes(4).toString('hex')}"}`);
    const layers = [randomBytes(1000), randomBytes(2000)];
    await client.pushImage('ivy/app', 'v1', config, layers);
    pushed.push(...[config, ...layers].map((b) => sha256(b)));
    // The jobs are lost (a flushed Redis, or blobs pushed before eustorage was a default location).
    await waitFor(async () => (await f.registry.db.query(`SELECT 1 FROM outbox`)).rows.length === 0, 20_000, 50);
    await f.producer.queue(imagestoragereplication.name).obliterate({ force: true });
  });
  afterAll(async () => {
    await f?.close();
    await fs.rm(dir, { recursive: true, force: true });
    const queue = new Queue(imagestoragereplication.name, { connection: { url: CLI_REDIS_URL }, prefix: 'quayfleet' });
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  });

  it('status counts the missing copies; backfill queues each once, prints its digest, and prints nothing once done', async () => {
    const defaults = f.config.quay.DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS;
    let status = await replicationStatusReport(f.registry.db, f.producer, defaults);
    expect(status.find((s) => s.location === 'eustorage')).toMatchObject({ held: 0, missing: 3, queued: 0, failed: 0 });
    expect(status.find((s) => s.location === 'usstorage')).toMatchObject({ held: 3, missing: 0 });

    const printed: string[] = [];
    const progress: number[] = [];
    const backfill = () => backfillReplication(f.registry.db, f.producer, {
      defaultLocations: defaults, locations: f.names, pageSize: 2,
      listener: { queued: (blob) => printed.push(blob.digest), progress: (lastId) => progress.push(lastId) },
    });
    expect((await backfill()).queued).toBe(3);
    expect(printed.sort()).toEqual([...pushed].sort());
    expect(progress.length).toBeGreaterThanOrEqual(1); // paged: 2 blobs per page
    status = await replicationStatusReport(f.registry.db, f.producer, defaults);
    expect(status.find((s) => s.location === 'eustorage')).toMatchObject({ missing: 3, queued: 3 });
    // Jobs still waiting: a second run queues nothing.
    printed.length = 0;
    expect((await backfill()).queued).toBe(0);

    await f.startWorker();
    await waitFor(async () => (await replicationStatusReport(f.registry.db, f.producer, defaults)).every((s) => s.missing === 0), 60_000, 100);
    status = await replicationStatusReport(f.registry.db, f.producer, defaults);
    expect(status.find((s) => s.location === 'eustorage')).toMatchObject({ held: 3, missing: 0, queued: 0 });
    expect((await backfill()).queued).toBe(0);
    expect(printed).toEqual([]);
  });

  it('quayfleet replication backfill prints queued digests, plain progress lines off a terminal, then nothing', async () => {
    // A blob only in usstorage again: its eustorage placement removed.
    await f.registry.db.query(
      `DELETE FROM imagestorageplacement p USING imagestoragelocation l, imagestorage s
        WHERE p.location_id = l.id AND l.name = 'eustorage' AND s.id = p.storage_id AND s.content_checksum = $1`, [pushed[1]]);
    const file = path.join(dir, 'config.yaml');
    await fs.writeFile(file, stringify({
      FEATURE_STORAGE_REPLICATION: true, DISTRIBUTED_STORAGE_CONFIG: entries,
      DISTRIBUTED_STORAGE_PREFERENCE: ['usstorage'], DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: ['usstorage', 'eustorage'],
    }));
    const env = { DB_URI: f.registry.database.url, REDIS_URL: CLI_REDIS_URL, QUAYFLEET_CONFIG: file };
    const first = await run(['replication', 'backfill'], env);
    expect(first.status).toBe(0);
    expect(first.stdout).toBe(`${pushed[1]}\n`);
    expect(first.stderr).toContain('examined');
    const second = await run(['replication', 'backfill'], env);
    expect(second.status).toBe(0);
    expect(second.stdout).toBe('');
    const status = await run(['replication', 'status'], env);
    expect(status.stdout).toMatch(/eustorage\s+2\s+\d+\s+1\s+1\s+0/);
    expect(status.stdout).toContain('replication incomplete: 1 copies missing (1 queued');
  });

  it('quayfleet storage remove-location: refuses while a blob has its only copy there, n changes nothing, y deletes', async () => {
    // One blob only in eustorage.
    await f.registry.db.query(
      `WITH s AS (INSERT INTO imagestorage (content_checksum, image_size) VALUES ($1, 1) RETURNING id)
       INSERT INTO imagestorageplacement (storage_id, location_id) SELECT s.id, l.id FROM s, imagestoragelocation l WHERE l.name = 'eustorage'`,
      [`sha256:${randomBytes(32).toString('hex')}`]);
    const file = path.join(dir, 'removed.yaml');
    // The operator first takes eustorage out of the configuration (Quay's order).
    await fs.writeFile(file, stringify({ DISTRIBUTED_STORAGE_CONFIG: { usstorage: entries.usstorage }, DISTRIBUTED_STORAGE_PREFERENCE: ['usstorage'] }));
    const env = { DB_URI: f.registry.database.url, QUAYFLEET_CONFIG: file };
    const placementsAt = async () => (await f.registry.db.query<{ id: number }>(
      `SELECT p.id FROM imagestorageplacement p JOIN imagestoragelocation l ON l.id = p.location_id WHERE l.name = 'eustorage' ORDER BY p.id`)).rows.map((r) => r.id);
    const before = await placementsAt();

    const unknown = await run(['storage', 'remove-location', 'nowhere'], env);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('no storage location named "nowhere"');

    const refused = await run(['storage', 'remove-location', 'eustorage'], env, 'y\n');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('1 blob(s) have their only copy there');
    expect(await placementsAt()).toEqual(before);

    const no = await run(['storage', 'remove-location', 'eustorage', '--force'], env, 'n\n');
    expect(no.status).toBe(1);
    expect(no.stdout).toContain('Are you sure you want to remove eustorage from your storage locations? [y/n]');
    expect(await placementsAt()).toEqual(before);

    const yes = await run(['storage', 'remove-location', 'eustorage', '--force'], env, 'y\n');
    expect(yes.status).toBe(0);
    expect(yes.stdout).toContain(`${before.map((id) => `Deleted placement ${id}`).join('\n')}\nDeleted location eustorage\n`);
    expect(await placementsAt()).toEqual([]);
    expect((await f.registry.db.query(`SELECT 1 FROM imagestoragelocation WHERE name = 'eustorage'`)).rows).toEqual([]);
  });
});
