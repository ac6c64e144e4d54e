/** `quayfleet gc --dry-run` / `--audit` and GET /api/v1/superuser/gc/dryrun over the same data. */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { dryRun } from '../../shared/db/gc/dry-run.ts';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.ts';
import { blob, createGcFixture, manifest, namespace, repository, tag, type GcFixture } from './fixtures.ts';

const run = promisify(execFile);

describe('quayfleet gc', () => {
  let f: GcFixture;
  let configPath: string;
  beforeAll(async () => {
    f = await createGcFixture('gccli');
    const ns = await namespace(f, 'acme', 0);
    const id = await repository(f, ns, 'app');
    await tag(f, id, 'old', await manifest(f, id, { blobs: [await blob(f), await blob(f)] }), { endMs: Date.now() - 1000 });
    await tag(f, id, 'new', await manifest(f, id, { blobs: [await blob(f)] }));
    configPath = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'quayfleet-gccli-')), 'config.yaml');
    await fs.writeFile(configPath, stringify({ DISTRIBUTED_STORAGE_CONFIG: f.storageConfig, DISTRIBUTED_STORAGE_PREFERENCE: ['local_us'] }));
  });
  afterAll(async () => {
    await f.close();
    await fs.rm(path.dirname(configPath), { recursive: true, force: true });
  });

  const cli = (args: string[]) => run(process.execPath, ['bin/quayfleet.js', 'gc', ...args], {
    env: { ...process.env, DB_URI: f.database.url, QUAYFLEET_CONFIG: configPath, LOG_LEVEL: 'silent' },
  });

  it('--dry-run --json prints exactly the dry run, and text mode one line per namespace', async () => {
    const json = JSON.parse((await cli(['--dry-run', '--json', '--namespace', 'acme'])).stdout) as { totals: unknown };
    const expected = await dryRun(f.pool, { namespace: 'acme' });
    expect(json.totals).toEqual(expected.totals);
    expect(expected.totals).toMatchObject({ tags: 1, manifests: 1, blobs: 2 });
    const text = (await cli(['--dry-run', '--repository', 'acme/app'])).stdout;
    expect(text).toMatch(/^acme\t1\t1\t0\t2\t\d+$/m);
  });

  it('--audit reports storage consistent with the database', async () => {
    expect((await cli(['--audit'])).stdout).toMatch(/storage matches the database/);
  });

  it('refuses to run without --dry-run or --audit, and names an unknown namespace', async () => {
    await expect(cli([])).rejects.toMatchObject({ code: 2 });
    await expect(cli(['--dry-run', '--namespace', 'nope'])).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/namespace "nope" not found/) });
  });
});

describe('GET /api/v1/superuser/gc/dryrun', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry({ label: 'gcapi' });
    await registry.createUser('admin', 'password123', { superuser: true });
    await registry.createUser('alice', 'password123');
    const repo = await registry.createRepository('alice/app');
    await registry.db.query(`UPDATE namespace SET removed_tag_expiration_s = 0 WHERE username = 'alice'`);
    const { rows } = await registry.db.query<{ id: number }>(
      `INSERT INTO manifest (repository_id, digest, media_type, manifest_bytes) VALUES ($1, 'sha256:' || repeat('a', 64), 'x', '\\x00') RETURNING id`, [repo.id]);
    await registry.db.query(`INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms) VALUES ('t', $1, $2, 0, 1)`, [repo.id, rows[0]!.id]);
  });
  afterAll(async () => { await registry.close(); });

  it('answers superusers with figures per namespace and items', async () => {
    const response = await registry.api('GET', '/superuser/gc/dryrun?namespace=alice&limit=5', { as: ['admin', 'password123'] });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      scope: { namespace: 'alice' }, totals: { tags: 1, manifests: 1 },
      namespaces: [{ namespace: 'alice', tags: 1, manifests: 1 }], items: { truncated: false },
    });
  });

  it('refuses everyone else, and 404s an unknown scope', async () => {
    expect((await registry.api('GET', '/superuser/gc/dryrun')).statusCode).toBe(401);
    expect((await registry.api('GET', '/superuser/gc/dryrun', { as: ['alice', 'password123'] })).statusCode).toBe(403);
    expect((await registry.api('GET', '/superuser/gc/dryrun?namespace=nope', { as: ['admin', 'password123'] })).statusCode).toBe(404);
  });
});
