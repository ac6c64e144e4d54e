/**
 * `npm start` as a new user runs it: the real npm, the embedded Postgres and redis-server, in a
 * data directory of its own on free ports. A signal to npm's PID takes every process it started
 * down with it; a second process on a busy port says which port and which variable moves it; a
 * single worker without DB_URI or REDIS_URL uses the running fleet's embedded servers, or runs
 * degraded saying what to set.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(root, 'bin/quayfleet.js');
// The embedded Postgres runs as the `postgres` user when the tests run as root: it must reach the data directory.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-start-'));
fs.chmodSync(dir, 0o755);

interface Ports { http: number; metrics: number; postgres: number; redis: number }

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function fleetEnv(ports: Ports, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH!, HOME: process.env.HOME ?? dir, LOG_LEVEL: 'info',
    QUAYFLEET_DATA_DIR: path.join(dir, 'data'),
    QUAYFLEET_HTTP_PORT: String(ports.http), QUAYFLEET_METRICS_PORT: String(ports.metrics),
    QUAYFLEET_EMBEDDED_POSTGRES_PORT: String(ports.postgres), QUAYFLEET_EMBEDDED_REDIS_PORT: String(ports.redis),
    ...extra,
  };
}

interface Started { child: ChildProcess; output: () => string; exited: Promise<number | null> }

function start(command: string, args: string[], env: Record<string, string>): Started {
  const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${output().slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Every live descendant of `pid` (children, their children, ...), read from /proc. */
function descendants(pid: number): Map<number, string> {
  const children = new Map<number, number[]>();
  const names = new Map<number, string>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const [state, ppid] = stat.slice(close + 2).split(' ');
      if (state === 'Z') continue;
      names.set(Number(entry), stat.slice(stat.indexOf('(') + 1, close));
      children.set(Number(ppid), [...(children.get(Number(ppid)) ?? []), Number(entry)]);
    } catch {
      // exited while we read
    }
  }
  const found = new Map<number, string>();
  const visit = (parent: number): void => {
    for (const child of children.get(parent) ?? []) {
      found.set(child, names.get(child)!);
      visit(child);
    }
  };
  visit(pid);
  return found;
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const RUNNING = /"msg":"quayfleet is running"/;

describe('npm start', { timeout: 300_000 }, () => {
  let ports: Ports;
  beforeAll(async () => {
    ports = { http: await freePort(), metrics: await freePort(), postgres: await freePort(), redis: await freePort() };
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a worker without DB_URI and no running fleet runs degraded, saying what to set in its log and on /health/instance (OPS-4)', async () => {
    const worker = start(process.execPath, [CLI, 'worker', 'gcworker'], fleetEnv(ports, { QUAYFLEET_METRICS_PORT: '0' }));
    try {
      await waitFor('the degraded health server', () => /"port":\d+,"msg":"metrics and health server listening"/.test(worker.output()), 60_000, worker.output);
      expect(worker.output()).toContain('set DB_URI=postgresql://');
      expect(worker.output()).toContain(`embedded Postgres of a running \`npm start\` (127.0.0.1:${ports.postgres})`);
      expect(worker.output()).toContain('configuration incomplete: DB_URI is required.');
      expect(worker.output()).not.toContain('    at ');
      const port = /"port":(\d+),"msg":"metrics and health server listening"/.exec(worker.output())![1];
      const response = await fetch(`http://127.0.0.1:${port}/health/instance`);
      expect(response.status).toBe(503);
      const body = await response.json() as { data: { services: Record<string, boolean>; config_errors: unknown[] }; status_code: number };
      expect(body.data.services).toEqual({ config: false });
      expect(body.data.config_errors).toContainEqual({ FieldGroup: 'Database', Tags: ['DB_URI'], Message: 'DB_URI is required.' });
      expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toMatch(/^quayfleet_config_errors\{[^}]*\} [1-9]/m);
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    } finally {
      worker.child.kill('SIGKILL');
    }
  });

  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('%s to npm\'s PID takes node, Postgres and redis-server down with it', async (signal) => {
    const npm = start('npm', ['start'], fleetEnv(ports));
    let processes = new Map<number, string>();
    try {
      await waitFor('the fleet to run', () => RUNNING.test(npm.output()), 180_000, npm.output);
      processes = descendants(npm.child.pid!);
      const names = [...processes.values()];
      expect(names).toContain('node');
      expect(names).toContain('postgres');
      expect(names).toContain('redis-server');

      if (signal === 'SIGTERM') {
        await readmeFirstPush(ports);
        await whileTheFleetRuns(ports);
      }

      npm.child.kill(signal);
      await waitFor(`every process of npm start to exit after ${signal}`,
        () => [...processes.keys()].every((pid) => !alive(pid)), 60_000,
        () => `${npm.output()}\nstill running: ${[...processes].filter(([pid]) => alive(pid)).map(([pid, name]) => `${pid} ${name}`).join(', ')}`);
      await npm.exited;
      if (signal !== 'SIGHUP') expect(npm.output()).toContain('"msg":"shutting down"');
    } finally {
      // Whatever a failed case leaves behind goes, so the next case (and other tests) start clean.
      for (const pid of [...processes.keys(), ...descendants(npm.child.pid!).keys()]) if (alive(pid)) process.kill(pid, 'SIGKILL');
      npm.child.kill('SIGKILL');
    }
  });
});

/** Runs README's first-push block line by line, as a new user pastes it, against the running fleet. */
async function readmeFirstPush(ports: Ports): Promise<void> {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const block = /<!-- first-push:[^>]*-->\n```sh\n([\s\S]*?)\n```/.exec(readme);
  expect(block, 'README has its first-push block').toBeTruthy();
  const lines = block![1]!.split('\n').filter((line) => line.trim() !== '');
  expect(lines.join('\n')).toContain('skopeo copy');
  // The user's checkout, seen from a scratch directory: the block's relative paths resolve as in the README.
  const work = fs.mkdtempSync(path.join(dir, 'readme-'));
  for (const link of ['bin', 'scripts']) fs.symlinkSync(path.join(root, link), path.join(work, link));
  let last = '';
  for (const line of lines) {
    const command = line.replaceAll('localhost:8080', `localhost:${ports.http}`);
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn('sh', ['-c', command], { cwd: work, env: fleetEnv(ports, { LOG_LEVEL: 'warn' }), stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
      child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
      child.once('close', (code) => resolve({ code, output }));
    });
    expect(result.code, `${command}\n${result.output}`).toBe(0);
    last = result.output;
  }
  // The pull brought back the very image pushed, and the registry names its digest.
  const digestOf = (layout: string): string => (JSON.parse(fs.readFileSync(path.join(work, layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0]!.digest;
  expect(digestOf('pulled')).toBe(digestOf('image'));
  expect(last).toContain(digestOf('image'));
}

/** What a second process meets next to a running fleet. */
async function whileTheFleetRuns(ports: Ports): Promise<void> {
  // A second fleet on the same ports: refused before it starts anything, naming the port and its variable.
  const second = start(process.execPath, [CLI, 'all'], fleetEnv(ports));
  expect(await second.exited).toBe(2);
  expect(second.output()).toContain(`port ${ports.http} is already in use`);
  expect(second.output()).toContain('set QUAYFLEET_HTTP_PORT to a free port');
  expect(second.output()).not.toContain('EADDRINUSE');

  const busyMetrics = start(process.execPath, [CLI, 'worker', 'gcworker'], fleetEnv(ports));
  expect(await busyMetrics.exited).toBe(2);
  expect(busyMetrics.output()).toContain(`port ${ports.metrics} is already in use`);
  expect(busyMetrics.output()).toContain('set QUAYFLEET_METRICS_PORT to a free port');

  // A single worker without DB_URI/REDIS_URL uses the fleet's embedded Postgres and Redis.
  const worker = start(process.execPath, [CLI, 'worker', 'gcworker'], fleetEnv(ports, { QUAYFLEET_METRICS_PORT: '0' }));
  try {
    await waitFor('the worker to run', () => RUNNING.test(worker.output()), 120_000, worker.output);
    expect(worker.output()).toContain('"workers":["gcworker"]');
  } finally {
    worker.child.kill('SIGTERM');
  }
  expect(await worker.exited).toBe(0);
}
