/**
 * A real `quayfleet all` child process for fault tests, and a load of OCI pushes, pulls and tag
 * deletes over HTTP (each deleted tag schedules GC work, which the process's gcworker runs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createUserAccount } from '../../shared/db/accounts.ts';
import { setTimeMachineSeconds } from '../../shared/db/namespaces.ts';
import { createPool, withTransaction } from '../../shared/db/pool.ts';

const CLI = path.resolve(import.meta.dirname, '../../bin/quayfleet.js');

export interface FleetProcess {
  readonly child: ChildProcess;
  readonly base: string;
  readonly metricsBase: string;
  readonly dataDir: string;
  /** Everything the process wrote to stdout and stderr. */
  output(): string;
  /** True while the process has not exited. */
  alive(): boolean;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface FleetProcessOptions {
  readonly dbUri: string;
  readonly redisUrl: string;
  readonly httpPort: number;
  readonly metricsPort: number;
  /** Extra config.yaml keys. */
  readonly config?: Record<string, unknown>;
  readonly command?: string[];
  readonly env?: Record<string, string>;
}

/** Spawns `quayfleet all` (or `command`) with its own data dir and config; resolves once /health/instance answers. */
export async function startFleetProcess(options: FleetProcessOptions): Promise<FleetProcess> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-fault-'));
  const configPath = path.join(dataDir, 'config.yaml');
  const config = {
    SERVER_HOSTNAME: `127.0.0.1:${options.httpPort}`,
    DISTRIBUTED_STORAGE_CONFIG: { default: ['LocalStorage', { storage_path: path.join(dataDir, 'storage') }] },
    DISTRIBUTED_STORAGE_PREFERENCE: ['default'],
    ...options.config,
  };
  fs.writeFileSync(configPath, JSON.stringify(config)); // JSON is YAML
  const child = spawn(process.execPath, [CLI, ...(options.command ?? ['all'])], {
    cwd: dataDir,
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn',
      DB_URI: options.dbUri, REDIS_URL: options.redisUrl, QUAYFLEET_CONFIG: configPath, QUAYFLEET_DATA_DIR: dataDir,
      QUAYFLEET_HTTP_PORT: String(options.httpPort), QUAYFLEET_METRICS_PORT: String(options.metricsPort),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const fleet: FleetProcess = {
    child, dataDir,
    base: `http://127.0.0.1:${options.httpPort}`,
    metricsBase: `http://127.0.0.1:${options.metricsPort}`,
    output: () => output,
    alive: () => child.exitCode === null && child.signalCode === null,
    exited,
    async stop(graceMs = 30_000) {
      if (fleet.alive()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (!fleet.alive()) throw new Error(`fleet process exited during startup:\n${output}`);
    const ok = await fetch(`${fleet.metricsBase}/health/instance`).then((r) => r.status === 200, () => false);
    if (ok) return fleet;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`fleet process not healthy within 180 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Creates user `name` with `password` in the database at `dbUri`, with no time machine (a deleted tag is GC work at once). */
export async function createUser(dbUri: string, name: string, password: string): Promise<void> {
  const pool = createPool({ connectionString: dbUri, max: 1 });
  try {
    await withTransaction(pool, async (tx) => {
      const user = await createUserAccount(tx, { username: name, password, email: `${name}@example.com` });
      await setTimeMachineSeconds(tx, user.id, 0);
    });
  } finally {
    await pool.end();
  }
}

/** A bearer token for push, pull and delete on `repository`. */
export async function pushToken(base: string, service: string, user: string, password: string, repository: string): Promise<string> {
  const query = new URLSearchParams({ service, scope: `repository:${repository}:push,pull,delete` });
  const response = await fetch(`${base}/v2/auth?${query}`, { headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } });
  if (response.status !== 200) throw new Error(`/v2/auth answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { token: string }).token;
}

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** What the load saw: counts by `step:status` (status `network` when the request itself failed). */
export class LoadTally {
  readonly counts = new Map<string, number>();
  /** Bodies of 503 answers, a few of each step. */
  readonly unavailableBodies: string[] = [];
  add(key: string): void { this.counts.set(key, (this.counts.get(key) ?? 0) + 1); }
  /** Keys whose status is neither a success nor 503. */
  unexpected(): string[] {
    return [...this.counts.keys()].filter((key) => !/:(200|201|202|503)$/.test(key));
  }
  count(pattern: RegExp): number {
    return [...this.counts].filter(([key]) => pattern.test(key)).reduce((sum, [, n]) => sum + n, 0);
  }
}

/**
 * One round: push a config and a layer blob, PUT a manifest under a new tag, GET it, DELETE the tag
 * (GC work). Stops the round at the first answer that is not the expected success. Returns whether
 * every step succeeded.
 */
export async function pushRound(base: string, token: string, repository: string, tally: LoadTally): Promise<boolean> {
  const auth = { authorization: `Bearer ${token}` };
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
  const layer = randomBytes(4096);
  const tag = `t${randomBytes(4).toString('hex')}`;
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
  }));
  const steps: [string, () => Promise<Response>, number][] = [
    ['blob', () => fetch(`${base}/v2/${repository}/blobs/uploads/?digest=${sha256(config)}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: config }), 201],
    ['blob', () => fetch(`${base}/v2/${repository}/blobs/uploads/?digest=${sha256(layer)}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: layer }), 201],
    ['manifest-put', () => fetch(`${base}/v2/${repository}/manifests/${tag}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest }), 201],
    ['manifest-get', () => fetch(`${base}/v2/${repository}/manifests/${tag}`, { headers: { ...auth, accept: 'application/vnd.oci.image.manifest.v1+json' } }), 200],
    ['tag-delete', () => fetch(`${base}/v2/${repository}/manifests/${tag}`, { method: 'DELETE', headers: auth }), 202],
  ];
  for (const [step, send, expected] of steps) {
    let status: number | 'network';
    let body = '';
    try {
      const response = await send();
      status = response.status;
      body = await response.text();
    } catch {
      status = 'network';
    }
    tally.add(`${step}:${status}`);
    if (status === 503 && tally.unavailableBodies.length < 20) tally.unavailableBodies.push(body);
    if (status !== expected) return false;
  }
  return true;
}

/** Runs `concurrency` loops of pushRound until `stop()`; `stop` resolves when they have ended. */
export function runLoad(base: string, token: string, repository: string, concurrency: number): { tally: LoadTally; stop(): Promise<void> } {
  const tally = new LoadTally();
  let running = true;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      const ok = await pushRound(base, token, repository, tally);
      if (!ok) await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
  return { tally, async stop() { running = false; await Promise.all(loops); } };
}

/** The value of an unlabelled-or-labelled counter in /metrics text, summed over its series. */
export async function metricValue(metricsBase: string, name: string): Promise<number> {
  const text = await (await fetch(`${metricsBase}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = new RegExp(`^${name}(\\{[^}]*\\})? ([0-9.e+-]+)$`).exec(line);
    if (match) sum += Number(match[2]);
  }
  return sum;
}

/** /health/instance of the metrics port: HTTP status and services. */
export async function instanceHealth(metricsBase: string): Promise<{ status: number; services: Record<string, boolean> }> {
  const response = await fetch(`${metricsBase}/health/instance`);
  const body = (await response.json()) as { data: { services: Record<string, boolean> } };
  return { status: response.status, services: body.data.services };
}

/** Polls `check` every 200 ms until it is truthy or `timeoutMs` passes (then throws `what`). */
export async function eventually<T>(what: string, check: () => Promise<T>, timeoutMs = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
