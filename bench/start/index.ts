/**
 * Process start and idle memory of every process type, as a pod runs it: `quayfleet registry` and
 * `quayfleet worker <name>` for each worker, each a fresh process with DB_URI and REDIS_URL set and
 * LocalStorage configured, timed from spawn to its first 200 on /health/instance (what the
 * startupProbe asks), with the CPU time it used until then (user + system, from /proc: the figure
 * load changes least, as wall time on a busy machine is mostly waiting for a core), then its RSS
 * after settling idle for a moment.
 *
 * Two builds side by side, alternating per process type so load hits both alike: the compiled
 * dist/ (what the image runs; built first when missing or stale) and the sources through tsx (the
 * development path, and what the image ran before). Targets: a worker ready in < 1 s compiled.
 *
 *   npm run bench -- start          (BENCH_ROUNDS=3 starts per process type and build)
 *
 * The last line printed is one JSON object. Ports 21790 (HTTP) and 21791 (metrics).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WORKER_NAMES } from '../../workers/catalog.ts';
import { createBenchDatabase, REDIS_URL } from '../gc/quayfleet.ts';
import { ensureBuilt, ROOT as root } from '../build.ts';
import { loadLine, printResult } from '../report.ts';

const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const HTTP_PORT = 21790;
const METRICS_PORT = 21791;
const IDLE_SETTLE_MS = 1500;

interface Start { readonly readyMs: number; readonly cpuMs: number; readonly idleRssBytes: number }

/** CPU time (user + system, ms) the process `pid` has used so far, from /proc (clock ticks of 10 ms). */
async function cpuMsOf(pid: number): Promise<number> {
  const fields = (await fs.readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Starts one process, waits for health 200, samples RSS once idle, stops it with SIGTERM. */
async function startOnce(args: string[], env: Record<string, string>): Promise<Start | undefined> {
  const started = performance.now();
  const child = spawn(process.execPath, ['bin/quayfleet.js', ...args], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (;;) {
      // Exit 0 before answering: the worker's gate is off in this configuration (it says why on stderr).
      if (child.exitCode === 0) return undefined;
      if (child.exitCode !== null) throw new Error(`quayfleet ${args.join(' ')} exited with ${child.exitCode}: ${stderr.slice(-2000)}`);
      const ok = await fetch(`http://127.0.0.1:${METRICS_PORT}/health/instance`).then((r) => r.status === 200, () => false);
      if (ok) break;
      if (performance.now() - started > 60_000) throw new Error(`quayfleet ${args.join(' ')} not healthy after 60 s: ${stderr.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const readyMs = performance.now() - started;
    const cpuMs = await cpuMsOf(child.pid!);
    await new Promise((resolve) => setTimeout(resolve, IDLE_SETTLE_MS));
    const status = await fs.readFile(`/proc/${child.pid}/status`, 'utf8');
    return { readyMs, cpuMs, idleRssBytes: Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024 };
  } finally {
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(kill);
  }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const MiB = 1024 * 1024;

console.log(loadLine('before'));
// The compiled side runs dist/: built when missing or older than the sources (bin/quayfleet.js
// would otherwise fall back to the sources and both sides would measure tsx).
ensureBuilt();
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'quayfleet-bench-start-'));
const db = await createBenchDatabase();
try {
  const config = path.join(dir, 'config.yaml');
  await fs.writeFile(config, [
    'DISTRIBUTED_STORAGE_CONFIG:', `  default: [LocalStorage, {storage_path: ${path.join(dir, 'storage')}}]`,
    'DISTRIBUTED_STORAGE_PREFERENCE: [default]', 'SERVER_HOSTNAME: 127.0.0.1', 'SETUP_COMPLETE: true',
    // Every worker's gate on, so each process type starts (one still off is reported as disabled).
    'FEATURE_QUOTA_MANAGEMENT: true', 'QUOTA_BACKFILL: true', 'FEATURE_REPO_MIRROR: true', 'FEATURE_SECURITY_SCANNER: true',
    'FEATURE_SECURITY_NOTIFICATIONS: true', 'SECURITY_SCANNER_V4_ENDPOINT: http://127.0.0.1:21799', 'FEATURE_ACTION_LOG_ROTATION: true',
    'ACTION_LOG_ARCHIVE_LOCATION: default', 'ACTION_LOG_ARCHIVE_PATH: archived/', 'FEATURE_STORAGE_REPLICATION: true',
    'STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE: true',
  ].join('\n'));
  const env = (build: 'dist' | 'sources'): Record<string, string> => ({
    PATH: process.env.PATH!, HOME: process.env.HOME ?? dir, LOG_LEVEL: 'warn', DB_URI: db.url, REDIS_URL,
    QUAYFLEET_CONFIG: config, QUAYFLEET_DATA_DIR: path.join(dir, 'data'), QUAYFLEET_HTTP_PORT: String(HTTP_PORT),
    QUAYFLEET_METRICS_PORT: String(METRICS_PORT), QUAYFLEET_FROM_SOURCE: build === 'sources' ? '1' : '',
  });
  const processes = [['registry'], ...WORKER_NAMES.map((name) => ['worker', name])];
  type Figure = { readyMs: number; cpuMs: number; idleRssMiB: number };
  const rows: Record<string, { dist: Figure; sources: Figure }> = {};
  const disabled: string[] = [];
  for (const args of processes) {
    const runs = { dist: [] as Start[], sources: [] as Start[] };
    let off = false;
    for (let round = 0; round < ROUNDS && !off; round++) {
      for (const build of round % 2 === 0 ? (['dist', 'sources'] as const) : (['sources', 'dist'] as const)) {
        const start = await startOnce(args, env(build));
        if (start) runs[build].push(start);
        else off = true;
      }
    }
    if (off) {
      disabled.push(args.at(-1)!);
      console.log(`${args.at(-1)!.padEnd(36)} disabled by its gate in this configuration`);
      continue;
    }
    const figure = (list: Start[]): Figure => ({
      readyMs: Math.round(median(list.map((s) => s.readyMs))), cpuMs: Math.round(median(list.map((s) => s.cpuMs))),
      idleRssMiB: Math.round(median(list.map((s) => s.idleRssBytes)) / MiB),
    });
    const name = args.at(-1)!;
    const row = { dist: figure(runs.dist), sources: figure(runs.sources) };
    rows[name] = row;
    const show = (f: Figure) => `ready ${String(f.readyMs).padStart(5)} ms (CPU ${String(f.cpuMs).padStart(4)} ms), idle RSS ${f.idleRssMiB} MiB`;
    console.log(`${name.padEnd(36)} compiled: ${show(row.dist)}; tsx: ${show(row.sources)}`);
  }
  const workers = Object.entries(rows).filter(([name]) => name !== 'registry');
  const slowestWorkerMs = Math.max(...workers.map(([, r]) => r.dist.readyMs));
  // CPU to ready is what load does not change much; wall time on a shared machine is mostly waiting for a core.
  const slowestWorkerCpuMs = Math.max(...workers.map(([, r]) => r.dist.cpuMs));
  const ratio = {
    readyMs: median(Object.values(rows).map((r) => r.sources.readyMs / r.dist.readyMs)),
    cpuMs: median(Object.values(rows).map((r) => r.sources.cpuMs / r.dist.cpuMs)),
    idleRss: median(Object.values(rows).map((r) => r.sources.idleRssMiB / r.dist.idleRssMiB)),
  };
  console.log(`slowest compiled worker: ready in ${slowestWorkerMs} ms, ${slowestWorkerCpuMs} ms CPU (target < 1000 ms);`
    + ` tsx/compiled medians: ready ${ratio.readyMs.toFixed(2)}x, CPU ${ratio.cpuMs.toFixed(2)}x, idle RSS ${ratio.idleRss.toFixed(2)}x`);
  printResult({
    benchmark: 'start', rounds: ROUNDS, disabled, slowestWorkerReadyMs: slowestWorkerMs, slowestWorkerCpuMs,
    targetMet: slowestWorkerMs < 1000, cpuTargetMet: slowestWorkerCpuMs < 1000, processes: rows, ratio,
  });
} finally {
  await db.drop();
  await fs.rm(dir, { recursive: true, force: true });
}
