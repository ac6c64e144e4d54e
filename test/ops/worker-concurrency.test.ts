/**
 * QUAYFLEET_WORKER_CONCURRENCY sizes a worker pod (deploy/README.md, "Scaling each worker"): a
 * `worker <name>` process takes that many jobs at once instead of the worker's own concurrency; a
 * bad value is a config error naming the variable.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../shared/config/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { REDIS_URL } from '../helpers/redis.ts';

const CLI = path.resolve(import.meta.dirname, '../../bin/quayfleet.js');
const METRICS_PORT = 22521;

describe('QUAYFLEET_WORKER_CONCURRENCY', { timeout: 180_000 }, () => {
  let database: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    database = await createTestDatabase('concurrency');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-concurrency-'));
  });
  afterAll(async () => {
    await database?.drop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is parsed as a whole number of jobs, and refused otherwise with its name', () => {
    expect(parseConfig({}, { QUAYFLEET_WORKER_CONCURRENCY: '12' }).workerConcurrency).toBe(12);
    expect(parseConfig({}, {}).workerConcurrency).toBeUndefined();
    for (const wrong of ['0', '-1', '2.5', 'many']) {
      let error: unknown;
      try {
        parseConfig({}, { QUAYFLEET_WORKER_CONCURRENCY: wrong });
      } catch (caught) {
        error = caught;
      }
      expect(error, wrong).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((i) => i.key)).toEqual(['QUAYFLEET_WORKER_CONCURRENCY']);
    }
  });

  it('sets how many jobs a worker pod takes at once', async () => {
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(config, `DISTRIBUTED_STORAGE_CONFIG:\n  default: [LocalStorage, {storage_path: ${path.join(dir, 'storage')}}]\nDISTRIBUTED_STORAGE_PREFERENCE: [default]\n`);
    const child = spawn(process.execPath, [CLI, 'worker', 'notificationworker'], {
      env: {
        PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', DB_URI: database.url, REDIS_URL, QUAYFLEET_CONFIG: config,
        QUAYFLEET_DATA_DIR: path.join(dir, 'data'), QUAYFLEET_METRICS_PORT: String(METRICS_PORT), QUAYFLEET_WORKER_CONCURRENCY: '3',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const started = Date.now();
      let line: { concurrency?: number } | undefined;
      while (!line) {
        if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}: ${output}`);
        if (Date.now() - started > 120_000) throw new Error(`no 'worker started' line after 120 s: ${output}`);
        const found = output.split('\n').find((l) => l.includes('"worker started"'));
        if (found) line = JSON.parse(found) as { concurrency?: number };
        else await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // notificationworker's own concurrency is 16.
      expect(line.concurrency).toBe(3);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
