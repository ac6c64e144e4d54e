/**
 * quayfleet's side of the GC benchmark: a fresh migrated database, the model's rows and objects,
 * and GC run the way the fleet runs it: one `garbagecollection` job per repository through the
 * real gcworker on BullMQ, until every job completed.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { garbagecollection } from '../../queues/garbagecollection.ts';
import { parseConfig, type Config } from '../../shared/config/index.ts';
import { migrate } from '../../shared/db/migrate.ts';
import { createPool, type Pool } from '../../shared/db/pool.ts';
import { createLogger } from '../../shared/runtime/logger.ts';
import { createProducer, type Producer } from '../../shared/runtime/producer.ts';
import { runWorker, type RunningWorker } from '../../shared/runtime/run-worker.ts';
import type { DistributedStorage } from '../../shared/storage/distributed.ts';
import { gcworker } from '../../workers/gcworker/index.ts';

export const POSTGRES_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A throwaway migrated database. */
export interface BenchDatabase {
  readonly url: string;
  readonly pool: Pool;
  drop(): Promise<void>;
}

/** Creates and migrates database `qf_gcbench_<random>`. */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `qf_gcbench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  await migrate(url.toString());
  const pool = createPool({ connectionString: url.toString(), max: 24 });
  return {
    url: url.toString(), pool,
    async drop() {
      await pool.end();
      const dropper = new pg.Client({ connectionString: POSTGRES_URL });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await dropper.end();
    },
  };
}

/** A gcworker running in this process on its own Redis prefix, and a producer for its queue. */
export interface BenchFleet {
  readonly producer: Producer;
  readonly prefix: string;
  stop(): Promise<void>;
}

/** Starts the gcworker with `concurrency` jobs at once (the fleet's replicas x concurrency). */
export async function startGcWorker(pool: Pool, storage: DistributedStorage, concurrency: number, config: Config = parseConfig({})): Promise<BenchFleet> {
  const prefix = `qfbench:gc:${randomBytes(4).toString('hex')}`;
  const producer = createProducer({ url: REDIS_URL, prefix });
  const worker = await runWorker(gcworker, {
    config, services: { db: pool, storage, config }, redis: { url: REDIS_URL, prefix }, log: createLogger({ level: 'warn' }), concurrency,
  });
  if (worker.disabled) throw new Error('gcworker is disabled');
  return {
    producer, prefix,
    async stop() {
      await (worker as RunningWorker).stop(5000);
      await producer.queue(garbagecollection.name).obliterate({ force: true });
      await producer.close();
    },
  };
}

/** Enqueues one job per repository and resolves with the seconds until all completed. */
export async function collectAll(fleet: BenchFleet, repositoryIds: readonly number[]): Promise<number> {
  const started = performance.now();
  const dueAtS = Math.floor(Date.now() / 1000);
  const ids = await Promise.all(repositoryIds.map((repositoryId) =>
    fleet.producer.enqueue(garbagecollection, { v: 1, reason: 'manual', repositoryId, dueAtS })));
  const queue = fleet.producer.queue(garbagecollection.name);
  // Cheap counts while work remains (a sweep tick may add to them), then each job's own state.
  for (;;) {
    const counts = await queue.getJobCounts('completed', 'failed');
    if ((counts.failed ?? 0) > 0) throw new Error('a GC job failed');
    if ((counts.completed ?? 0) >= ids.length) {
      const states = await Promise.all(ids.map(async (id) => (await queue.getJob(id))?.getState()));
      if (states.every((state) => state === 'completed')) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return (performance.now() - started) / 1000;
}
