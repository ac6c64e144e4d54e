/**
 * Long CLI operations show a cli-progress bar on a terminal and plain lines otherwise: `gc --audit`
 * (one step per storage location listed, then the GC plan) and `storage remove-location` (its
 * placements; Quay's `Deleted placement N` lines when stdout is not a terminal). The terminal is
 * a real pseudo-terminal: util-linux's `script` runs the CLI in one.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const CLI = path.resolve(import.meta.dirname, '../../bin/quayfleet.js');
const run = promisify(execFile);
const PLACEMENTS = 40;

describe('progress of long CLI operations', { timeout: 240_000 }, () => {
  let database: TestDatabase;
  let dir: string;
  let env: Record<string, string>;

  /** The CLI with pipes for stdout and stderr (not a terminal). */
  const piped = async (args: string[]) => run(process.execPath, [CLI, ...args], { env });
  /** The CLI in a pseudo-terminal: stdout and stderr both a TTY, merged as a terminal shows them. */
  const inTerminal = async (args: string[]) => {
    const command = [process.execPath, CLI, ...args].map((word) => `'${word}'`).join(' ');
    return (await run('script', ['--quiet', '--return', '--command', command, '/dev/null'], { env: { ...env, TERM: 'xterm', COLUMNS: '120' } })).stdout;
  };
  /** `count` blobs placed in `location` (rows only: the audit lists them as missing objects). */
  const place = async (location: string, count: number) => {
    await database.pool.query(
      `WITH s AS (INSERT INTO imagestorage (content_checksum, image_size)
                    SELECT 'sha256:' || encode(sha256(random()::text::bytea), 'hex'), 1 FROM generate_series(1, $2) RETURNING id)
       INSERT INTO imagestorageplacement (storage_id, location_id) SELECT s.id, l.id FROM s, imagestoragelocation l WHERE l.name = $1`,
      [location, count]);
  };

  beforeAll(async () => {
    database = await createTestDatabase('cliprogress');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-cli-progress-'));
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(config, stringify({
      DISTRIBUTED_STORAGE_CONFIG: { keep: ['LocalStorage', { storage_path: path.join(dir, 'keep') }], gone: ['LocalStorage', { storage_path: path.join(dir, 'gone') }] },
      DISTRIBUTED_STORAGE_PREFERENCE: ['keep'],
    }));
    env = { PATH: process.env.PATH!, HOME: process.env.HOME ?? dir, LOG_LEVEL: 'warn', DB_URI: database.url, QUAYFLEET_CONFIG: config };
    await database.pool.query(`INSERT INTO imagestoragelocation (name) VALUES ('keep'), ('gone') ON CONFLICT DO NOTHING`);
  });

  afterAll(async () => {
    await database?.drop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gc --audit: a bar on a terminal, one line per step otherwise', async () => {
    const terminal = await inTerminal(['gc', '--audit']);
    expect(terminal).toMatch(/gc audit \(locations listed, then the GC plan\) \[[=-]+\] 100% \| 3\/3/);
    expect(terminal).toContain('storage matches the database');

    const { stdout, stderr } = await piped(['gc', '--audit']);
    expect(stderr.split('\n').filter((l) => l.startsWith('gc audit'))).toEqual([0, 1, 2, 3].map((n) => `gc audit (locations listed, then the GC plan): ${n}/3`));
    expect(stdout).toContain('storage matches the database');
    expect(stdout).not.toContain('gc audit');
  });

  it('storage remove-location: a bar on a terminal, Quay\'s Deleted placement lines otherwise', async () => {
    await place('gone', PLACEMENTS);
    const terminal = await inTerminal(['storage', 'remove-location', 'gone', '--force', '--yes']);
    expect(terminal).toMatch(new RegExp(`storage remove-location gone \\(placements\\) \\[[=-]+\\] 100% \\| ${PLACEMENTS}/${PLACEMENTS}`));
    expect(terminal).not.toContain('Deleted placement');
    expect(terminal).toContain('Deleted location gone');

    await database.pool.query(`INSERT INTO imagestoragelocation (name) VALUES ('gone')`);
    await place('gone', PLACEMENTS);
    const { stdout, stderr } = await piped(['storage', 'remove-location', 'gone', '--force', '--yes']);
    expect(stdout.match(/^Deleted placement \d+$/gm)).toHaveLength(PLACEMENTS);
    expect(stdout).toMatch(/Deleted location gone\n$/);
    expect(stderr).not.toContain('remove-location gone (placements)');
  });
});
