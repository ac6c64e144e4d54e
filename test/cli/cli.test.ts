/**
 * The CLI as operators run it: real child processes against the real Postgres and Redis.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { REDIS_URL } from '../helpers/redis.ts';
import { TEST_POSTGRES_URL } from '../servers/ports.ts';

const CLI = path.resolve(import.meta.dirname, '../../bin/quayfleet.js');
const fixtures = path.resolve(import.meta.dirname, '../fixtures/config');
const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-cli-'));

/** Runs the CLI in a child process (asynchronously: a blocked test worker loses its RPC to vitest). */
function run(args: string[], env: Record<string, string> = {}, input?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...env }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  child.stdin.end(input ?? '');
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

// Each case starts Node processes that load the TypeScript sources: slow on a busy 2-core machine.
describe('quayfleet CLI', { timeout: 180_000 }, () => {
  let database: TestDatabase;
  beforeAll(async () => { database = await createTestDatabase('cli'); });
  afterAll(async () => { await database.drop(); });

  it('migrates an empty database, and a second run changes nothing', async () => {
    const name = `qf_cli_empty_${process.pid}`;
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(TEST_POSTGRES_URL);
    url.pathname = `/${name}`;
    try {
      expect((await run(['migrate'], { DB_URI: url.toString() })).status).toBe(0);
      const second = await run(['migrate'], { DB_URI: url.toString(), LOG_LEVEL: 'info' });
      expect(second.status).toBe(0);
      expect(second.stdout).toContain('database schema is current');
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  it("refuses to migrate without DB_URI with Quay's message", async () => {
    const result = await run(['migrate']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('DB_URI is required.');
  });

  it('reports every configuration error at once and exits non-zero', async () => {
    const result = await run(['migrate'], { QUAYFLEET_CONFIG: path.join(fixtures, 'bad.yaml') });
    expect(result.status).toBe(2);
    for (const key of ['FEATURE_GARBAGE_COLLECTION', 'GARBAGE_COLLECTION_FREQUENCY', 'DEFAULT_TAG_EXPIRATION', 'SUPER_USERS', 'DISTRIBUTED_STORAGE_PREFERENCE']) {
      expect(result.stderr).toContain(key);
    }
  });

  it('refuses an unknown worker and answers --help on every command', async () => {
    const unknown = await run(['worker', 'nosuchworker']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown worker "nosuchworker"');
    const commands = [[], ['registry'], ['worker'], ['all'], ['migrate'], ['queues'], ['users', 'create'], ['orgs', 'create'], ['gc']];
    const helps = await Promise.all(commands.map((command) => run([...command, '--help'])));
    helps.forEach((help, i) => {
      expect(help.status, commands[i]!.join(' ')).toBe(0);
      expect(help.stdout).toContain('Usage: quayfleet');
    });
  });

  it('creates users and organizations', async () => {
    const env = { DB_URI: database.url };
    expect((await run(['users', 'create', 'cliuser', '--password-stdin', '--superuser'], env, 'password-1\n')).stdout).toContain('created user cliuser (superuser)');
    expect((await run(['orgs', 'create', 'cliorg', '--owner', 'cliuser'], env)).stdout).toContain('created organization cliorg');
    const duplicate = await run(['users', 'create', 'cliuser', '--password-stdin'], env, 'password-2\n');
    expect(duplicate.status).toBe(2);
    expect(duplicate.stderr).toContain('already exists');
    expect((await run(['orgs', 'create', 'cliorg2', '--owner', 'nobody'], env)).status).toBe(2);
  });

  it('lists every queue', async () => {
    const result = await run(['queues', '--json'], { REDIS_URL });
    expect(result.status).toBe(0);
    const names = (JSON.parse(result.stdout) as { queueName: string }[]).map((q) => q.queueName);
    expect(names).toEqual(expect.arrayContaining(['garbagecollection', 'namespacegc', 'repositorygc', 'notification', 'chunk_cleanup', 'dockerfilebuild']));
  });

  it('runs the registry, serves health and metrics, and stops on SIGTERM within its deadline', async () => {
    const child = spawn(process.execPath, [CLI, 'registry'], {
      cwd,
      env: {
        PATH: process.env.PATH, DB_URI: database.url, REDIS_URL, LOG_LEVEL: 'warn',
        QUAYFLEET_HTTP_PORT: '18481', QUAYFLEET_METRICS_PORT: '18491', QUAYFLEET_SHUTDOWN_DEADLINE_SECONDS: '5',
        QUAYFLEET_DATA_DIR: path.join(cwd, 'data'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let health: Response | undefined;
      for (let i = 0; i < 400 && !health; i++) { // up to ~80 s: a loaded machine starts the process slowly
        health = await fetch('http://127.0.0.1:18481/health/endtoend').catch(() => undefined);
        if (!health) await new Promise((r) => setTimeout(r, 200));
      }
      expect(health?.status).toBe(200);
      expect(await health!.json()).toEqual({ data: { services: { auth: true, database: true, redis: true, storage: true } }, status_code: 200 });
      // Quay's instance keys, the gunicorn ones answered by the process's own listener over loopback.
      const instance = await fetch('http://127.0.0.1:18491/health/instance');
      expect([instance.status, await instance.json()]).toEqual([200, {
        data: { services: { auth: true, database: true, disk_space: true, registry_gunicorn: true, service_key: true, web_gunicorn: true } }, status_code: 200,
      }]);
      const v2 = await fetch('http://127.0.0.1:18481/v2/');
      expect(v2.status).toBe(401);
      expect(v2.headers.get('www-authenticate')).toContain('realm="http://localhost:18481/v2/auth"');
      const metrics = await (await fetch('http://127.0.0.1:18491/metrics')).text();
      expect(metrics).toMatch(/quay_queue_items_available_unlocked\{[^}]*queue_name="garbagecollection"/);
      expect(metrics).toContain('process_name="registry"');
    } finally {
      const started = Date.now();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(Date.now() - started).toBeLessThan(10_000);
    }
  });
});
