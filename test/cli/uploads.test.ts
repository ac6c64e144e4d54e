/**
 * `quayfleet uploads list|clean [--dry-run]` as an operator runs it: a real child process against
 * the test database and a LocalStorage directory.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLocations } from '../../shared/db/blobs.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const CLI = path.resolve(import.meta.dirname, '../../bin/quayfleet.js');
let database: TestDatabase;
let dir: string;
let uploads: string;
let abandoned: string;
let fresh: string;

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', DB_URI: database.url, QUAYFLEET_CONFIG: path.join(dir, 'config.yaml'), QUAYFLEET_DATA_DIR: path.join(dir, 'data') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

async function session(uuid: string, idleDays: number): Promise<void> {
  const { rows } = await database.pool.query<{ id: number }>(`INSERT INTO namespace (username) VALUES ($1) RETURNING id`, [`ns${uuid.slice(0, 8)}`]);
  const repo = await database.pool.query<{ id: number }>(`INSERT INTO repository (namespace_user_id, name) VALUES ($1, 'app') RETURNING id`, [rows[0]!.id]);
  const at = new Date(Date.now() - idleDays * 86_400_000);
  const staged = `uploads/${uuid}.staged-aaaaaaaaaaaa`;
  await fs.writeFile(path.join(uploads, `${uuid}.staged-aaaaaaaaaaaa`), randomBytes(700));
  await database.pool.query(
    `INSERT INTO blobupload (repository_id, uuid, byte_count, location_id, storage_metadata, created, updated)
     VALUES ($1, $2, 700, (SELECT id FROM imagestoragelocation WHERE name = 'default'), $3, $4, $4)`,
    [repo.rows[0]!.id, uuid, JSON.stringify({ parts: 0, tail: { key: staged, bytes: 700 } }), at]);
}

beforeAll(async () => {
  database = await createTestDatabase('cliuploads');
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qf-cli-uploads-'));
  uploads = path.join(dir, 'storage', 'uploads');
  await fs.mkdir(uploads, { recursive: true });
  await fs.writeFile(path.join(dir, 'config.yaml'), JSON.stringify({
    DISTRIBUTED_STORAGE_CONFIG: { default: ['LocalStorage', { storage_path: path.join(dir, 'storage') }] }, DISTRIBUTED_STORAGE_PREFERENCE: ['default'],
  }));
  await ensureLocations(database.pool, ['default']);
  abandoned = randomUUID();
  fresh = randomUUID();
  await session(abandoned, 3);
  await session(fresh, 1);
});
afterAll(async () => {
  await database?.drop();
  await fs.rm(dir, { recursive: true, force: true });
});

async function sessions(): Promise<string[]> {
  const { rows } = await database.pool.query<{ uuid: string }>(`SELECT uuid::text AS uuid FROM blobupload ORDER BY id`);
  return rows.map((r) => r.uuid);
}

describe('quayfleet uploads', { timeout: 120_000 }, () => {
  it('lists the abandoned session and changes nothing; clean --dry-run neither', async () => {
    const list = await run(['uploads', 'list', '--json']);
    expect(list.status, list.stderr).toBe(0);
    const report = JSON.parse(list.stdout) as { dryRun: boolean; sessions: { sessions: number; bytes: number; listed: { uuid: string }[] } };
    expect(report).toMatchObject({ dryRun: true, sessions: { sessions: 1, bytes: 700 } });
    expect(report.sessions.listed.map((s) => s.uuid)).toEqual([abandoned]);
    const dry = await run(['uploads', 'clean', '--dry-run']);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('abandoned sessions: would remove 1 (700 bytes)');
    expect(dry.stdout).toContain(`session ${abandoned}`);
    expect(await sessions()).toEqual([abandoned, fresh]);
    expect((await fs.readdir(uploads)).length).toBe(2);
  });

  it('cleans the abandoned session and its bytes, keeping the recent one', async () => {
    const clean = await run(['uploads', 'clean']);
    expect(clean.status, clean.stderr).toBe(0);
    expect(clean.stdout).toContain('abandoned sessions: removed 1 (700 bytes), 1 objects, 0 failed');
    expect(await sessions()).toEqual([fresh]);
    expect(await fs.readdir(uploads)).toEqual([`${fresh}.staged-aaaaaaaaaaaa`]);
  });

  it('refuses an unknown location and a bad --limit with exit 2 and a clear message', async () => {
    const location = await run(['uploads', 'clean', '--location', 'nowhere']);
    expect(location.status).toBe(2);
    expect(location.stderr).toContain('unknown storage location "nowhere"; configured: default');
    const limit = await run(['uploads', 'list', '--limit', 'many']);
    expect(limit.status).toBe(2);
    expect(limit.stderr).toContain('--limit must be a whole number');
    const help = await run(['uploads', '--help']);
    expect(help.stdout).toContain('list');
    expect(help.stdout).toContain('clean');
  });
});
