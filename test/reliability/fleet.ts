/**
 * The whole fleet as production runs it, for the reliability parts: the front end (`quayfleet
 * registry`) and each worker pod (`quayfleet worker <name>`) in a process of its own, on a fresh
 * database cloned from the test template, a private Redis server (so a part may flush or restart
 * it without touching anyone else), and LocalStorage in a temp directory unless the caller passes
 * another DISTRIBUTED_STORAGE_CONFIG (RadosGW, a fault-injecting proxy in front of it...).
 *
 * Helpers SIGKILL and restart one process, read its /health/instance and /metrics (metrics port)
 * and its RSS from /proc/<pid>/status, and run the storage-versus-database and quota audits.
 *
 * Every process holds secrets (a password in DB_URI, the private Redis's requirepass, SECRET_KEY,
 * DATABASE_SECRET_KEY, the users' passwords and tokens the parts use, the caller's own such as
 * upstream mirror credentials); secretLeaks() scans everything every process wrote for them.
 *
 * Ports: the caller gives a base port from its own range; the front end listens on base, process
 * i's metrics server on base + 1 + i, the private Redis on base + 40.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { parseConfig } from '../../shared/config/index.ts';
import { createUserAccount, createOrganizationAccount } from '../../shared/db/accounts.ts';
import { auditStorage, type AuditReport } from '../../shared/db/gc/audit.ts';
import { setTimeMachineSeconds } from '../../shared/db/namespaces.ts';
import { withTransaction, type Pool } from '../../shared/db/pool.ts';
import { auditQuotaTotals, type QuotaMismatch } from '../../shared/db/quota/audit.ts';
import { createDistributedStorage } from '../../shared/storage/distributed.ts';
import { COMPANIONS, WORKER_NAMES } from '../../workers/catalog.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { preparePostgresTemplate } from '../servers/postgres-redis.ts';
import { startRedisServer } from '../servers/redis-topologies.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
/**
 * What each process runs. By default the one entry point, bin/quayfleet.js, which runs dist/ when
 * it is present and fresh (CI builds it before the tests) and the sources through tsx otherwise;
 * it decides at every start, so editing a source during a run would turn later restarts into tsx
 * loads (tens of seconds each on two loaded cores instead of a few). The long-form runner builds
 * dist/ first and pins it for the whole run (useCompiledBuild).
 */
let cli = { path: path.join(ROOT, 'bin', 'quayfleet.js'), env: {} as Record<string, string>, build: 'entry point' };

/** Every fleet started from now on runs dist/cli.js directly (the caller made sure it is built and fresh). */
export function useCompiledBuild(): void {
  cli = { path: path.join(ROOT, 'dist', 'cli.js'), env: { QUAYFLEET_BUILD: 'dist' }, build: 'dist (pinned)' };
}

/** Which build the processes run: 'dist (pinned)' or 'entry point' (bin/quayfleet.js's choice). */
export const fleetBuild = (): string => cli.build;

/** Every worker pod a Kubernetes install runs (companions run inside their host's pod). */
export const WORKER_PODS: readonly string[] = WORKER_NAMES.filter((name) => !Object.values(COMPANIONS).some((c) => c.includes(name)));

/** The process names of a whole fleet: the front end, then every worker pod. */
export const ALL_PROCESSES: readonly string[] = ['registry', ...WORKER_PODS];

export interface FleetOptions {
  /** Base port (from the caller's range): front end on base, metrics on base + 1 + i, Redis on base + 40. */
  readonly basePort: number;
  /** Which processes to run ('registry' and worker pod names); default ALL_PROCESSES. */
  readonly processes?: readonly string[];
  /** Extra config.yaml keys, merged over the defaults below (storage, features, GC windows). */
  readonly config?: Record<string, unknown>;
  /** Extra environment of every process. */
  readonly env?: Record<string, string>;
  /** Use this Redis instead of starting a private one (the caller owns it). */
  readonly redisUrl?: string;
  /** Label of the cloned database. */
  readonly label?: string;
  /** LOG_LEVEL of the processes (default 'warn'); their output goes to <dataDir>/logs/<name>.log. */
  readonly logLevel?: string;
  /** Milliseconds to wait for a process's /health/instance (default 300 s). */
  readonly startTimeoutMs?: number;
  /** More secret values (name -> value) the processes are given, for secretLeaks() (e.g. upstream mirror credentials). */
  readonly secrets?: Record<string, string>;
}

/** One process of the fleet. `pid` changes when it is restarted. */
export interface FleetMember {
  readonly name: string;
  readonly command: readonly string[];
  readonly metricsPort: number;
  child: ChildProcess;
  /** Times it was (re)started, the first start included. */
  starts: number;
  /** True when the worker exited 0 at start because its config disables it. */
  disabled: boolean;
  readonly logFile: string;
}

export interface QueueBacklog { pending: Record<string, number>; failed: Record<string, number>; outbox: number }

export interface RssFigures { firstKiB: number; lastKiB: number; peakKiB: number; samples: number }

export interface Fleet {
  readonly dataDir: string;
  readonly database: TestDatabase;
  readonly pool: Pool;
  readonly redisUrl: string;
  readonly configPath: string;
  /** The config.yaml the processes read (defaults merged with options.config). */
  readonly config: Record<string, unknown>;
  /** http://127.0.0.1:<basePort>, the front end. */
  readonly base: string;
  /** The SERVER_HOSTNAME tokens are issued for. */
  readonly service: string;
  readonly members: ReadonlyMap<string, FleetMember>;
  /** Names of the processes running (not disabled). */
  names(): string[];
  alive(name: string): boolean;
  pid(name: string): number | undefined;
  /** SIGKILL (or `signal`) the process and wait until it has exited. */
  kill(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Start the process again (after kill) and wait for its /health/instance (unless `wait` is false). */
  restart(name: string, options?: { wait?: boolean }): Promise<void>;
  /** Wait until the process answers /health/instance (throws if it exits or the start timeout passes). */
  waitHealthy(name: string): Promise<void>;
  /** /health/instance of the process's metrics port: HTTP status and body (status 0 when unreachable). */
  health(name: string): Promise<{ status: number; body: unknown }>;
  /** /metrics text of the process's metrics port. */
  metrics(name: string): Promise<string>;
  /** Sum of a metric's series in the process's /metrics (only series whose labels contain `labels`, e.g. 'outcome="done"'). */
  metricValue(name: string, metric: string, labels?: string): Promise<number>;
  /** VmRSS of the process, KiB (undefined when it is not running). */
  rss(name: string): number | undefined;
  /** Samples every running process's RSS now (sampleRss also runs every 2 s on its own). */
  sampleRss(): void;
  /** First, last and peak RSS of each process since start (restarted processes restart their series). */
  rssFigures(): Record<string, RssFigures>;
  /** Everything the process wrote (all its starts). */
  output(name: string): string;
  /**
   * Secret values the fleet was given or handed out, by name: the DB_URI password, the Redis
   * password, SECRET_KEY, DATABASE_SECRET_KEY, the users' passwords, every token /v2/auth issued,
   * and FleetOptions.secrets. More may be added (e.g. a robot token a part creates).
   */
  readonly secrets: Map<string, string>;
  /** Every line any process wrote (stdout and stderr, all starts) holding a secret, raw, base64 or URL-encoded: `name in process: line`. */
  secretLeaks(): { linesScanned: number; leaks: string[] };
  /** Storage-versus-database audit over every configured location. */
  auditStorage(): Promise<AuditReport>;
  /** Quota totals that differ from their recomputation (empty when all agree). */
  auditQuota(): Promise<QuotaMismatch[]>;
  /**
   * Work not done yet: per BullMQ queue the jobs waiting, active, delayed or prioritized (scheduler
   * ticks excluded; 0s omitted), the jobs in each failed set (dead letters), and the outbox rows not
   * yet relayed to Redis.
   */
  queueBacklog(): Promise<QueueBacklog>;
  /** Creates a user (time machine 0 s, so a deleted tag is GC work at once); returns its namespace id. */
  createUser(name: string, password: string): Promise<number>;
  /** Creates an organization owned by `owner` (time machine 0 s). */
  createOrganization(name: string, owner: string): Promise<number>;
  /** A bearer token from /v2/auth for `scopes` (e.g. `repository:ns/r:push,pull,delete`). */
  token(user: string, password: string, scopes: string[]): Promise<string>;
  /** Stops every process (SIGTERM, SIGKILL after graceMs), drops the database, stops Redis, removes dataDir. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * For the runner (`npm run reliability`): a signal ends Node without 'exit' handlers, so the pods,
 * the private Redis, the cloned database and the data directory would outlive a run stopped with
 * Ctrl-C or `kill`. Not installed under vitest, which stops its forks itself.
 */
export function stopFleetsOnSignal(): void {
  const signals = { SIGINT: 2, SIGTERM: 15 } as const;
  for (const signal of Object.keys(signals) as (keyof typeof signals)[]) {
    process.once(signal, () => {
      process.stderr.write(`${signal}: stopping ${liveFleets.size} fleet(s)\n`);
      void Promise.all([...liveFleets].map((fleet) => fleet.stop(2000).catch(() => undefined)))
        .finally(() => process.exit(128 + signals[signal]));
    });
  }
}

/** Processes started at once when the fleet starts. */
const START_CONCURRENCY = 4;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Children of every fleet of this process, killed if the process exits without stopping them. */
const everyChild = new Set<ChildProcess>();
/** Fleets started and not yet stopped: a runner stopped by a signal stops them first. */
const liveFleets = new Set<Fleet>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of everyChild) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

/** Starts the fleet; resolves once every process answers /health/instance (disabled workers excepted). */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  installExitHook();
  await preparePostgresTemplate();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-reliability-'));
  fs.mkdirSync(path.join(dataDir, 'logs'));
  const cleanups: (() => Promise<void>)[] = [async () => fs.rmSync(dataDir, { recursive: true, force: true })];
  try {
    const database = await createTestDatabase(options.label ?? 'reliability');
    cleanups.unshift(() => database.drop());
    // Secrets every process holds, for the log check: a password in DB_URI (the test server trusts
    // loopback connections, so it is never asked for, but it is in every process's environment) and
    // one on the private Redis.
    const secrets = new Map<string, string>(Object.entries(options.secrets ?? {}));
    const dbUrl = new URL(database.url);
    dbUrl.password = `dbpw${randomBytes(12).toString('hex')}`;
    secrets.set('DB_URI password', dbUrl.password);
    let redisUrl = options.redisUrl;
    if (!redisUrl) {
      const redis = await startRedisServer(options.basePort + 40);
      cleanups.unshift(() => redis.stop());
      const password = `redispw${randomBytes(12).toString('hex')}`;
      const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await admin.connect();
      await admin.config('SET', 'requirepass', password);
      admin.disconnect();
      secrets.set('Redis password', password);
      redisUrl = `redis://:${password}@${new URL(redis.url).host}`;
    }
    const hostname = `127.0.0.1:${options.basePort}`;
    const config: Record<string, unknown> = {
      SERVER_HOSTNAME: hostname,
      DISTRIBUTED_STORAGE_CONFIG: { default: ['LocalStorage', { storage_path: path.join(dataDir, 'storage') }] },
      DISTRIBUTED_STORAGE_PREFERENCE: ['default'],
      GARBAGE_COLLECTION_FREQUENCY: 1,
      // As production sets it: tokens a front end issued stay valid after it restarts.
      SECRET_KEY: randomBytes(32).toString('hex'),
      DATABASE_SECRET_KEY: randomBytes(32).toString('hex'),
      ...options.config,
    };
    secrets.set('SECRET_KEY', String(config.SECRET_KEY));
    secrets.set('DATABASE_SECRET_KEY', String(config.DATABASE_SECRET_KEY));
    const configPath = path.join(dataDir, 'config.yaml');
    fs.writeFileSync(configPath, JSON.stringify(config)); // JSON is YAML
    const fleet = buildFleet(options, { dataDir, database, dbUrl: dbUrl.toString(), redisUrl, configPath, config, hostname, cleanups, secrets });
    // The front end first, then the workers a few at a time: eleven processes loading at once on
    // two loaded cores each take minutes (one alone: ~16 s at load 35).
    const [first, ...rest] = [...fleet.members.keys()];
    if (first) await fleet.restart(first);
    for (let i = 0; i < rest.length; i += START_CONCURRENCY) await Promise.all(rest.slice(i, i + START_CONCURRENCY).map((name) => fleet.restart(name)));
    return fleet;
  } catch (error) {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    throw error;
  }
}

interface FleetParts {
  dataDir: string; database: TestDatabase; dbUrl: string; redisUrl: string; configPath: string; config: Record<string, unknown>;
  hostname: string; cleanups: (() => Promise<void>)[]; secrets: Map<string, string>;
}

function buildFleet(options: FleetOptions, parts: FleetParts): Fleet {
  const { dataDir, database, dbUrl, redisUrl, configPath, config, hostname, cleanups, secrets } = parts;
  const names = options.processes ?? ALL_PROCESSES;
  const members = new Map<string, FleetMember>();
  names.forEach((name, i) => {
    members.set(name, {
      name, command: name === 'registry' ? ['registry'] : ['worker', name], metricsPort: options.basePort + 1 + i,
      child: undefined as unknown as ChildProcess, starts: 0, disabled: false, logFile: path.join(dataDir, 'logs', `${name}.log`),
    });
  });
  const rss = new Map<string, RssFigures>();
  const member = (name: string): FleetMember => {
    const m = members.get(name);
    if (!m) throw new Error(`no fleet process ${name}`);
    return m;
  };
  const alive = (name: string): boolean => {
    const child = member(name).child as ChildProcess | undefined;
    return !!child && child.exitCode === null && child.signalCode === null;
  };
  const readRss = (pid: number | undefined): number | undefined => {
    if (!pid) return undefined;
    try {
      const match = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      return match ? Number(match[1]) : undefined;
    } catch {
      return undefined;
    }
  };
  const sampleRss = (): void => {
    for (const m of members.values()) {
      if (!alive(m.name)) continue;
      const kib = readRss(m.child.pid);
      if (kib === undefined) continue;
      const f = rss.get(m.name);
      if (!f) rss.set(m.name, { firstKiB: kib, lastKiB: kib, peakKiB: kib, samples: 1 });
      else { f.lastKiB = kib; f.peakKiB = Math.max(f.peakKiB, kib); f.samples++; }
    }
  };
  const sampler = setInterval(sampleRss, 2000);
  sampler.unref();
  const metricsBase = (name: string): string => `http://127.0.0.1:${member(name).metricsPort}`;

  const spawnMember = (m: FleetMember): void => {
    const log = fs.openSync(m.logFile, 'a');
    const child = spawn(process.execPath, [cli.path, ...m.command], {
      cwd: dataDir,
      env: {
        PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: options.logLevel ?? 'warn',
        DB_URI: dbUrl, REDIS_URL: redisUrl, QUAYFLEET_CONFIG: configPath, QUAYFLEET_DATA_DIR: dataDir,
        QUAYFLEET_HTTP_PORT: String(options.basePort), QUAYFLEET_METRICS_PORT: String(m.metricsPort),
        ...cli.env, ...options.env,
      },
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    everyChild.add(child);
    child.once('exit', () => everyChild.delete(child));
    m.child = child;
    m.starts++;
  };

  const waitHealthy = async (m: FleetMember): Promise<void> => {
    const deadline = Date.now() + (options.startTimeoutMs ?? 300_000);
    for (;;) {
      if (!alive(m.name)) {
        if (m.child.exitCode === 0 && m.command[0] === 'worker') { m.disabled = true; return; }
        throw new Error(`${m.name} exited during startup (${m.child.exitCode ?? m.child.signalCode}):\n${tail(m.logFile)}`);
      }
      const ok = await fetch(`${metricsBase(m.name)}/health/instance`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status === 200, () => false);
      if (ok) {
        // A (re)started process begins a new RSS series once it is ready: start-up is not growth.
        rss.delete(m.name);
        sampleRss();
        return;
      }
      if (Date.now() > deadline) {
        m.child.kill('SIGKILL');
        throw new Error(`${m.name} not healthy within ${options.startTimeoutMs ?? 300_000} ms:\n${tail(m.logFile)}`);
      }
      await sleep(200);
    }
  };

  const exited = (child: ChildProcess): Promise<void> => child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));

  const storageConfig = parseConfig(config).quay;

  const fleet: Fleet = {
    dataDir, database, pool: database.pool, redisUrl, configPath, config,
    base: `http://${hostname}`, service: hostname, members,
    names: () => [...members.values()].filter((m) => !m.disabled).map((m) => m.name),
    alive,
    pid: (name) => (alive(name) ? member(name).child.pid : undefined),
    async kill(name, signal = 'SIGKILL') {
      const m = member(name);
      if (!alive(name)) return;
      m.child.kill(signal);
      await exited(m.child);
    },
    async restart(name, restartOptions = {}) {
      const m = member(name);
      if (alive(name)) throw new Error(`${name} is running; kill it first`);
      spawnMember(m);
      if (restartOptions.wait !== false) await waitHealthy(m);
    },
    waitHealthy: (name) => waitHealthy(member(name)),
    async health(name) {
      try {
        const response = await fetch(`${metricsBase(name)}/health/instance`, { signal: AbortSignal.timeout(5000) });
        return { status: response.status, body: await response.json().catch(() => undefined) };
      } catch {
        return { status: 0, body: undefined };
      }
    },
    async metrics(name) {
      return (await fetch(`${metricsBase(name)}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    },
    async metricValue(name, metric, labels) {
      const text = await fleet.metrics(name);
      let sum = 0;
      const pattern = new RegExp(`^${metric}(\\{[^}]*\\})? ([0-9.e+-]+)$`);
      for (const line of text.split('\n')) {
        const match = pattern.exec(line);
        if (match && (!labels || (match[1] ?? '').includes(labels))) sum += Number(match[2]);
      }
      return sum;
    },
    rss: (name) => readRss(fleet.pid(name)),
    sampleRss,
    rssFigures: () => Object.fromEntries([...rss].map(([name, f]) => [name, { ...f }])),
    output: (name) => { try { return fs.readFileSync(member(name).logFile, 'utf8'); } catch { return ''; } },
    secrets,
    secretLeaks() {
      const forms = [...secrets].filter(([, value]) => value.length >= 8)
        .flatMap(([name, value]) => [value, Buffer.from(value).toString('base64'), encodeURIComponent(value)].map((form) => [name, form] as const));
      let linesScanned = 0;
      const leaks: string[] = [];
      for (const m of members.values()) {
        for (const line of fleet.output(m.name).split('\n')) {
          if (!line) continue;
          linesScanned++;
          const found = forms.find(([, form]) => line.includes(form));
          if (found) leaks.push(`${found[0]} in ${m.name}: ${line.slice(0, 300)}`);
        }
      }
      return { linesScanned, leaks };
    },
    async auditStorage() {
      const storage = await createDistributedStorage(storageConfig);
      try {
        return await auditStorage(database.pool, storage, storage.locations);
      } finally {
        await storage.close();
      }
    },
    auditQuota: () => auditQuotaTotals(database.pool),
    async queueBacklog() {
      const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
      try {
        await redis.connect();
        const pending: Record<string, number> = {};
        const failed: Record<string, number> = {};
        const queues = new Set<string>();
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', '*:meta', 'COUNT', 1000);
          cursor = next;
          for (const key of keys) queues.add(key.slice(0, -':meta'.length));
        } while (cursor !== '0');
        // Scheduler ticks (`repeat:<scheduler>:<ms>`) are always due again: they are not backlog.
        const work = (ids: string[]): number => ids.filter((id) => !id.startsWith('repeat:')).length;
        for (const queue of queues) {
          const [wait, paused, active, delayed, prioritized, children, dead] = await Promise.all([
            redis.lrange(`${queue}:wait`, '0', '-1'), redis.lrange(`${queue}:paused`, '0', '-1'), redis.lrange(`${queue}:active`, '0', '-1'),
            redis.zrange(`${queue}:delayed`, '0', '-1'), redis.zrange(`${queue}:prioritized`, '0', '-1'),
            redis.zrange(`${queue}:waiting-children`, '0', '-1'), redis.zcard(`${queue}:failed`),
          ]);
          const n = work(wait) + work(paused) + work(active) + work(delayed) + work(prioritized) + work(children);
          if (n > 0) pending[queue] = n;
          if (dead > 0) failed[queue] = dead;
        }
        const { rows } = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox');
        return { pending, failed, outbox: rows[0]!.n };
      } finally {
        redis.disconnect();
      }
    },
    async createUser(name, password) {
      secrets.set(`password of ${name}`, password);
      return withTransaction(database.pool, async (tx) => {
        const user = await createUserAccount(tx, { username: name, password, email: `${name}@example.com` });
        await setTimeMachineSeconds(tx, user.id, 0);
        return user.id;
      });
    },
    async createOrganization(name, owner) {
      return withTransaction(database.pool, async (tx) => {
        const org = await createOrganizationAccount(tx, { name, owner, email: `${name}@example.com` });
        await setTimeMachineSeconds(tx, org.id, 0);
        return org.id;
      });
    },
    async token(user, password, scopes) {
      const query = new URLSearchParams({ service: hostname });
      for (const scope of scopes) query.append('scope', scope);
      const response = await fetch(`${fleet.base}/v2/auth?${query}`, { headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } });
      if (response.status !== 200) throw new Error(`/v2/auth answered ${response.status}: ${await response.text()}`);
      const { token } = (await response.json()) as { token: string };
      secrets.set(`token ${secrets.size}`, token);
      return token;
    },
    async stop(graceMs = 20_000) {
      liveFleets.delete(fleet);
      clearInterval(sampler);
      await Promise.all([...members.values()].map(async (m) => {
        if (!alive(m.name)) return;
        m.child.kill('SIGTERM');
        const timer = setTimeout(() => m.child.kill('SIGKILL'), graceMs);
        await exited(m.child);
        clearTimeout(timer);
      }));
      for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    },
  };
  liveFleets.add(fleet);
  return fleet;
}

/** The last `lines` lines of a log file. */
export function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
