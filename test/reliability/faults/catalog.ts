/**
 * The faults a run injects, each as `inject` (break something) and `heal` (put it back the way an
 * operator or the infrastructure would: a server restarted, a network fixed, disk space freed).
 * Nothing here touches the fleets' processes: they must recover by themselves.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { FaultSystem } from './system.ts';

export interface Fault {
  readonly name: string;
  /** What the fault is, for the figures. */
  readonly what: string;
  inject(): Promise<void>;
  heal(): Promise<void>;
  /** True when the fault is instantaneous (a flush): there is nothing to hold. */
  readonly instant?: boolean;
  /** How long the long form holds it (default: the run's hold). */
  readonly longHoldMs?: number;
  /** The fleets it hits (the others are not probed for its recovery). */
  readonly fleets: readonly FleetName[];
}

export type FleetName = 'rgw' | 'disk';
const BOTH: readonly FleetName[] = ['rgw', 'disk'];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every fault of the issue, in the order a run injects them. */
export function faultCatalog(system: FaultSystem): Fault[] {
  return [
    redisFlush(system), redisRestart(system), postgresTerminate(system), postgresRestart(system),
    storage(system, 'storage-errors', 'errors', 'RadosGW answers every request 500 InternalError'),
    storage(system, 'storage-slow', 'slow', 'RadosGW answers every request after 1.5 s'),
    // Held past the workers' 60 s storage deadline in the long form, so the fleet's own deadlines
    // end the requests (the front end's answers 503 after 2 x 5 s; the short form only shows that
    // held requests complete afterwards).
    { ...storage(system, 'storage-hang', 'hang', 'RadosGW accepts requests and answers none until healed'), longHoldMs: 75_000 },
    storage(system, 'storage-refused', 'refuse', 'RadosGW refuses connections (open ones cut)'),
    diskFull(system),
  ];
}

function redisFlush(system: FaultSystem): Fault {
  return {
    name: 'redis-flushall', fleets: BOTH, what: 'FLUSHALL on the queues\' Redis (every job, schedule and lock gone)', instant: true,
    async inject() {
      const redis = new Redis(system.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await redis.flushall();
      } finally {
        redis.disconnect();
      }
    },
    async heal() { /* nothing to put back: the fleet must rebuild what it needs */ },
  };
}

function redisRestart(system: FaultSystem): Fault {
  return {
    name: 'redis-restart', fleets: BOTH, what: 'redis-server stopped and started again, empty (no persistence)',
    inject: () => system.redis.stop(),
    heal: () => system.redis.start(),
  };
}

function postgresRestart(system: FaultSystem): Fault {
  return {
    name: 'postgres-restart', fleets: BOTH, what: 'Postgres stopped (fast shutdown) and started again',
    inject: () => system.postgres.stop(),
    heal: () => system.postgres.start(),
  };
}

/** pg_terminate_backend of every fleet backend, every 250 ms, for as long as the fault lasts. */
function postgresTerminate(system: FaultSystem): Fault {
  let stopping: (() => Promise<void>) | undefined;
  return {
    name: 'postgres-terminate', fleets: BOTH, what: 'pg_terminate_backend of every backend of both fleets, every 250 ms',
    async inject() {
      const admin = new pg.Client({ connectionString: system.postgres.url });
      await admin.connect();
      let running = true;
      let terminated = 0;
      const loop = (async () => {
        while (running) {
          const { rows } = await admin.query<{ n: number }>(
            `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
              WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`);
          terminated += rows[0]!.n;
          await sleep(250);
        }
      })();
      stopping = async () => {
        running = false;
        await loop;
        await admin.end();
        if (terminated === 0) throw new Error('postgres-terminate terminated no backend');
      };
    },
    async heal() { await stopping?.(); },
  };
}

function storage(system: FaultSystem, name: string, mode: 'errors' | 'slow' | 'hang' | 'refuse', what: string): Fault {
  return {
    name, what, fleets: ['rgw'],
    inject: () => system.proxy.setMode(mode, { slowMs: 1500 }),
    heal: () => system.proxy.setMode('pass'),
  };
}

/** Writes `handle` until ENOSPC, in shrinking chunks, so not one byte is left. */
async function fill(handle: fs.FileHandle): Promise<void> {
  for (const size of [1024 * 1024, 4096, 1]) {
    const chunk = Buffer.alloc(size);
    for (;;) {
      try {
        await handle.write(chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw error;
      }
    }
  }
}

/**
 * Fills the tmpfs of the `disk` fleet to the last byte with a file, and tops it up every 200 ms
 * while the fault lasts (GC frees space as it collects); healing deletes the file.
 */
function diskFull(system: FaultSystem): Fault {
  const filler = path.join(system.disk.dir, 'filler');
  let stopping: (() => Promise<void>) | undefined;
  return {
    name: 'disk-full', fleets: ['disk'], what: 'the filesystem driver\'s disk (tmpfs) filled to the last byte',
    async inject() {
      const handle = await fs.open(filler, 'w');
      await fill(handle);
      let running = true;
      const loop = (async () => {
        while (running) {
          await sleep(200);
          await fill(handle);
        }
      })();
      stopping = async () => {
        running = false;
        await loop;
        await handle.close();
      };
    },
    async heal() {
      await stopping?.();
      await fs.rm(filler, { force: true });
    },
  };
}
