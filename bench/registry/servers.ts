/**
 * The two servers of the registry benchmark, each a child process on a fixed loopback port below
 * 32768: the CNCF distribution registry (Debian's /usr/bin/docker-registry, its own config file,
 * filesystem storage in a temp dir) and quayfleet (quayfleet-server.ts over a temp database).
 * Neither touches an already-running instance; each is stopped by its own pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** A benchmarked registry server. */
export interface BenchServer {
  readonly name: string;
  readonly base: string;
  /** Basic credentials for /v2/auth, when the server needs them. */
  readonly credentials?: { username: string; password: string };
  /** Peak resident set size so far, in bytes (VmHWM). */
  peakRss(): Promise<number>;
  stop(): Promise<void>;
}

const DISTRIBUTION_BINARY = '/usr/bin/docker-registry';

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

/** Starts quayfleet on `port` over a new database (dropped on stop) and LocalStorage under `dir`. */
export async function startQuayfleet(dir: string, port: number, postgresUrl: string): Promise<BenchServer> {
  const dbName = `qf_bench_${randomBytes(4).toString('hex')}`;
  await adminQuery(postgresUrl, `CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(postgresUrl);
  dbUrl.pathname = `/${dbName}`;
  const script = fileURLToPath(new URL('./quayfleet-server.ts', import.meta.url));
  // BENCH_PROFILE_DIR: write a V8 CPU profile of the server there (open it in Chrome DevTools).
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_DB_URL: dbUrl.toString(), BENCH_STORAGE_DIR: dir, BENCH_PORT: String(port) },
  });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`quayfleet server exited with ${code}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve();
    });
  });
  const stopped = server('quayfleet', `http://127.0.0.1:${port}`, child, { username: 'bench', password: 'benchpassword' });
  return {
    ...stopped,
    async stop() {
      await stopped.stop();
      await adminQuery(postgresUrl, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    },
  };
}

function server(name: string, base: string, child: ChildProcess, credentials: BenchServer['credentials']): BenchServer {
  return {
    name, base, credentials,
    peakRss: async () => {
      const status = await fs.readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
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
