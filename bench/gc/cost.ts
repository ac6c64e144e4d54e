/**
 * GC's cost per deleted blob in terms the machine's load moves little: database round trips, this
 * process's CPU, the CPU of the GC pool's Postgres backends (from /proc: the bench runs on the
 * database's host) and filesystem calls. Throughput ratios swing with load (distribution's Go
 * threads get more of a busy machine than one Node thread waiting on backends); these do not.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { createPool, type Pool } from '../../shared/db/pool.ts';

/** The application name of the GC pool, which finds its backends in pg_stat_activity. */
const APPLICATION = 'qf-gcbench-gc';
const TICKS_PER_S = 100;

/** Counts of one measured window. */
export interface CostCounts {
  roundTrips: number;
  unlinks: number;
  rmdirs: number;
}

/**
 * Backend CPU ms by statement (its first 100 characters), when BENCH_GC_SQL_CPU=1: each statement
 * is charged its backend's /proc time across its round trip. Ticks are 10 ms, but the sum over
 * thousands of statements is a fair estimate of where the backends' time goes.
 */
export const statementCpuMs = new Map<string, { calls: number; ms: number }>();
const PROFILE_SQL = process.env.BENCH_GC_SQL_CPU === '1';

function procCpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * (1000 / TICKS_PER_S);
  } catch {
    return 0;
  }
}

/** A pool for GC alone (the front end keeps its own) whose round trips are counted. */
export function createMeteredPool(url: string, counts: CostCounts): Pool {
  const pool = createPool({ connectionString: url, max: 24, applicationName: APPLICATION });
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      counts.roundTrips++;
      if (!PROFILE_SQL || typeof args[0] !== 'string') return query(...args);
      const pid = (client as unknown as { processID: number }).processID;
      const text = args[0].replace(/\s+/g, ' ').slice(0, 100);
      const before = procCpuMs(pid);
      const charge = (): void => {
        const entry = statementCpuMs.get(text) ?? { calls: 0, ms: 0 };
        entry.calls++;
        entry.ms += procCpuMs(pid) - before;
        statementCpuMs.set(text, entry);
      };
      const last = args.at(-1);
      if (typeof last === 'function') {
        return query(...args.slice(0, -1), (...results: unknown[]) => { charge(); return (last as (...a: unknown[]) => unknown)(...results); });
      }
      const result = query(...args) as Promise<unknown>;
      return result.then((value) => { charge(); return value; }, (error: unknown) => { charge(); throw error; });
    };
  });
  return pool;
}

/** Counts unlink and rmdir calls from here on (LocalStorage imports them from node:fs/promises). */
export function countFilesystemCalls(counts: CostCounts): void {
  const promises = fs.promises as unknown as Record<'unlink' | 'rmdir', (...args: unknown[]) => Promise<unknown>>;
  const { unlink, rmdir } = promises;
  promises.unlink = (...args) => { counts.unlinks++; return unlink(...args); };
  promises.rmdir = (...args) => { counts.rmdirs++; return rmdir(...args); };
  syncBuiltinESMExports();
}

/** CPU ms of the GC pool's backends, by pid (a backend started inside the window counts from 0). */
async function backendCpuMs(pool: Pool): Promise<Map<number, number>> {
  const { rows } = await pool.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1`, [APPLICATION]);
  const cpu = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpu.set(pid, (Number(fields[11]) + Number(fields[12])) * (1000 / TICKS_PER_S));
    } catch {
      // Postgres on another host, or the backend just exited: no figure for it.
    }
  }
  return cpu;
}

/** Per-blob figures of one window. */
export interface CostPerBlob {
  readonly roundTrips: number;
  readonly nodeCpuMs: number;
  readonly postgresCpuMs: number;
  readonly unlinks: number;
  readonly rmdirs: number;
}

/** Starts a window; `end(blobs)` returns its costs divided by the blobs deleted. */
export async function startCostWindow(pool: Pool, counts: CostCounts): Promise<{ end(blobs: number): Promise<CostPerBlob> }> {
  const backends = await backendCpuMs(pool);
  const start = { ...counts };
  const cpu = process.cpuUsage();
  return {
    async end(blobs) {
      if (PROFILE_SQL) {
        for (const [text, { calls, ms }] of [...statementCpuMs].sort((a, b) => b[1].ms - a[1].ms)) console.log(`  ${ms.toFixed(0).padStart(6)} ms ${String(calls).padStart(6)} calls  ${text}`);
        statementCpuMs.clear();
      }
      const nodeUs = process.cpuUsage(cpu);
      const end = { ...counts };
      const after = await backendCpuMs(pool);
      let postgresMs = 0;
      for (const [pid, ms] of after) postgresMs += ms - (backends.get(pid) ?? 0);
      const per = (n: number): number => Math.round((n / blobs) * 10_000) / 10_000;
      return {
        roundTrips: per(end.roundTrips - start.roundTrips), nodeCpuMs: per((nodeUs.user + nodeUs.system) / 1000),
        postgresCpuMs: per(postgresMs), unlinks: per(end.unlinks - start.unlinks), rmdirs: per(end.rmdirs - start.rmdirs),
      };
    },
  };
}
