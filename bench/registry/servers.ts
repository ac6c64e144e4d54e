/**
 * The two servers of the registry benchmark, each a child process on a fixed loopback port below
 * 32768: the CNCF distribution registry (Debian's /usr/bin/docker-registry, its own config file,
 * filesystem storage in a temp dir) and quayfleet (`quayfleet registry`, compiled, over a temp
 * database).
 * Neither touches an already-running instance; each is stopped by its own pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { CLI, ensureBuilt } from '../build.ts';

/** A benchmarked registry server. */
export interface BenchServer {
  readonly name: string;
  readonly base: string;
  /** The server process's pid (for /proc sampling). */
  readonly pid: number;
  /** Basic credentials for /v2/auth, when the server needs them. */
  readonly credentials?: { username: string; password: string };
  /** Peak resident set size so far, in bytes (VmHWM). */
  peakRss(): Promise<number>;
  /**
   * CPU seconds the server has used so far (user + system, every thread). CPU per request does
   * not depend on how busy the machine is, where requests/s does: on a loaded 2-core machine the
   * scheduler shares CPU per thread, so a many-threaded Go server gets more of it than Node's one
   * JavaScript thread.
   */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

const DISTRIBUTION_BINARY = '/usr/bin/docker-registry';
/** The node flags of the registry pod (deploy/kubernetes/registry/deployment.yaml's command). */
const REGISTRY_POD_NODE_FLAGS = ['--min-semi-space-size=4', '--max-semi-space-size=4'];
/** MALLOC_ARENA_MAX of the registry pod (deployment.yaml's env; '' would leave glibc's default, 8 arenas per core). */
const REGISTRY_POD_MALLOC_ARENA_MAX = '2';
/** Linux's USER_HZ (`getconf CLK_TCK`), the unit of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS_PER_SECOND = 100;

/** Starts the distribution registry on `port` with filesystem storage under `dir`. */
export async function startDistribution(dir: string, port: number): Promise<BenchServer> {
  await fs.access(DISTRIBUTION_BINARY).catch(() => {
    throw new Error(`${DISTRIBUTION_BINARY} is missing: apt-get install docker-registry`);
  });
  const configFile = path.join(dir, 'config.yml');
  await fs.writeFile(configFile, [
    'version: 0.1',
    'log: {level: error, accesslog: {disabled: true}}',
    `storage: {filesystem: {rootdirectory: ${path.join(dir, 'data')}}, delete: {enabled: true}, cache: {blobdescriptor: inmemory}}`,
    `http: {addr: 127.0.0.1:${port}, secret: ${randomBytes(16).toString('hex')}}`,
  ].join('\n'));
  const child = spawn(DISTRIBUTION_BINARY, ['serve', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(child, `${base}/v2/`);
  return server('distribution', base, child, undefined);
}

/**
 * Starts quayfleet as a registry pod runs it: `quayfleet registry` from the compiled build (dist/),
 * over a new database (migrated by `quayfleet migrate`, dropped on stop) with one user, LocalStorage
 * under `dir`, Redis for the outbox relay, and its metrics server on `metricsPort`.
 */
export async function startQuayfleet(dir: string, port: number, postgresUrl: string, metricsPort: number): Promise<BenchServer> {
  ensureBuilt();
  const dbName = `qf_bench_${randomBytes(4).toString('hex')}`;
  await adminQuery(postgresUrl, `CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(postgresUrl);
  dbUrl.pathname = `/${dbName}`;
  const config = path.join(dir, 'config.yaml');
  await fs.writeFile(config, [
    `SERVER_HOSTNAME: 127.0.0.1:${port}`,
    'DISTRIBUTED_STORAGE_CONFIG:', `  default: [LocalStorage, {storage_path: ${path.join(dir, 'storage')}}]`, 'DISTRIBUTED_STORAGE_PREFERENCE: [default]',
  ].join('\n'));
  const env = {
    PATH: process.env.PATH!, HOME: process.env.HOME ?? dir, LOG_LEVEL: 'error', DB_URI: dbUrl.toString(), REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    QUAYFLEET_CONFIG: config, QUAYFLEET_DATA_DIR: path.join(dir, 'data'), QUAYFLEET_HTTP_PORT: String(port), QUAYFLEET_METRICS_PORT: String(metricsPort),

  };
  // glibc's malloc arenas as the pod's environment sets them (deploy/kubernetes/registry/deployment.yaml); BENCH_MALLOC_ARENA_MAX overrides.
  const arenas = process.env.BENCH_MALLOC_ARENA_MAX ?? REGISTRY_POD_MALLOC_ARENA_MAX;
  if (arenas) Object.assign(env, { MALLOC_ARENA_MAX: arenas });
  // BENCH_SERVER_ENV: extra `NAME=value` pairs (space-separated) for the server, e.g. glibc's MALLOC_* tunables.
  for (const pair of process.env.BENCH_SERVER_ENV?.split(' ').filter(Boolean) ?? []) Object.assign(env, { [pair.slice(0, pair.indexOf('='))]: pair.slice(pair.indexOf('=') + 1) });
  await runCli(['migrate'], env);
  await runCli(['users', 'create', 'bench', '--password-stdin'], env, 'benchpassword\n');
  // BENCH_PROFILE_DIR: write a V8 CPU profile of the server there (open it in Chrome DevTools).
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  // BENCH_NODE_FLAGS: extra node flags for the server (e.g. `--trace-gc` to see what the collector does).
  const flags = process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...profile, ...REGISTRY_POD_NODE_FLAGS, ...flags, CLI, 'registry'], { stdio: ['ignore', process.env.BENCH_SERVER_STDOUT ? 'inherit' : 'ignore', 'pipe'], env });
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(child, `${base}/v2/`);
  const stopped = server('quayfleet', base, child, { username: 'bench', password: 'benchpassword' });
  return {
    ...stopped,
    async stop() {
      await stopped.stop();
      await adminQuery(postgresUrl, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    },
  };
}

/** One CLI command from the compiled build; fails with its stderr. */
function runCli(args: string[], env: Record<string, string>, input = ''): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end(input);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`quayfleet ${args.join(' ')} exited with ${code}: ${stderr}`))));
  });
}

function server(name: string, base: string, child: ChildProcess, credentials: BenchServer['credentials']): BenchServer {
  return {
    name, base, credentials, pid: child.pid!,
    peakRss: async () => {
      const status = await fs.readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    cpuSeconds: async () => {
      const stat = await fs.readFile(`/proc/${child.pid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
    },
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      // A server that does not stop within 10 s of SIGTERM is killed, so a run never leaves one behind.
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    }),
  };
}

async function waitForHttp(child: ChildProcess, url: string): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`server exited: ${stderr}`);
    if (await fetch(url).then(() => true, () => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`server at ${url} did not answer: ${stderr}`);
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
