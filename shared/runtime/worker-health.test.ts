/**
 * A worker process answers the keys that matter to it (HEALTH-5): database, redis and storage on
 * /health/instance and /health/endtoend, disk_space_warning on /health/warning; each turns false
 * (503) when what it checks does not answer.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/index.ts';
import { createPool, type Pool } from '../db/pool.ts';
import { createDistributedStorage, type DistributedStorage } from '../storage/distributed.ts';
import { REDIS_URL } from '../../test/helpers/redis.ts';
import { TEST_POSTGRES_URL } from '../../test/servers/ports.ts';
import { workerHealthChecks, type WorkerHealthDeps } from './health.ts';
import { startMetricsServer } from './metrics-server.ts';

let dir: string;
let pool: Pool;
let deadPool: Pool;
let redis: Redis;
let deadRedis: Redis;
let storage: DistributedStorage;
let brokenStorage: DistributedStorage;

async function localStorage(storagePath: string): Promise<DistributedStorage> {
  return createDistributedStorage(parseConfig({
    DISTRIBUTED_STORAGE_CONFIG: { default: ['LocalStorage', { storage_path: storagePath }] }, DISTRIBUTED_STORAGE_PREFERENCE: ['default'],
  }).quay);
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qf-worker-health-'));
  await fs.writeFile(path.join(dir, 'a-file'), 'x');
  pool = createPool({ connectionString: TEST_POSTGRES_URL, max: 1 });
  deadPool = createPool({ connectionString: 'postgres://postgres@127.0.0.1:1/none', max: 1 });
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  deadRedis = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  deadRedis.on('error', () => undefined);
  storage = await localStorage(path.join(dir, 'storage'));
  brokenStorage = await localStorage(path.join(dir, 'a-file', 'storage')); // under a regular file: never creatable
});
afterAll(async () => {
  await Promise.all([pool.end(), deadPool.end(), storage.close(), brokenStorage.close()]);
  redis.disconnect();
  deadRedis.disconnect();
  await fs.rm(dir, { recursive: true, force: true });
});

async function health(overrides: Partial<WorkerHealthDeps>, route: string): Promise<{ status: number; body: unknown }> {
  const server = await startMetricsServer({
    port: 0, healthTimeoutMs: 3000,
    health: workerHealthChecks({ db: pool, redis, storage, diskPaths: [dir], diskWarningThreshold: 0.1, ...overrides }),
  });
  try {
    const response = await fetch(`http://127.0.0.1:${server.port}${route}`);
    return { status: response.status, body: await response.json() };
  } finally {
    await server.close();
  }
}

describe('worker health', () => {
  it('answers database, redis and storage on /health/instance and /health/endtoend, and disk_space_warning', async () => {
    const healthy = { status: 200, body: { data: { services: { database: true, redis: true, storage: true } }, status_code: 200 } };
    expect(await health({}, '/health/instance')).toEqual(healthy);
    expect(await health({}, '/health/endtoend')).toEqual(healthy);
    expect(await health({}, '/health/warning')).toEqual({ status: 200, body: { data: { services: { disk_space_warning: false } }, status_code: 200 } });
  });

  it.each(['database', 'redis', 'storage'])('reports %s false with 503 when it does not answer', async (key) => {
    const overrides: Partial<WorkerHealthDeps> = key === 'database' ? { db: deadPool } : key === 'redis' ? { redis: deadRedis } : { storage: brokenStorage };
    for (const route of ['/health/instance', '/health/endtoend']) {
      const result = await health(overrides, route);
      expect(result.status).toBe(503);
      expect(result.body).toEqual({
        data: { services: { database: key !== 'database', redis: key !== 'redis', storage: key !== 'storage' } }, status_code: 503,
      });
    }
  });

  it('raises disk_space_warning (503) when a volume has less free space than the threshold', async () => {
    expect(await health({ diskWarningThreshold: 1 }, '/health/warning'))
      .toEqual({ status: 503, body: { data: { services: { disk_space_warning: true } }, status_code: 503 } });
  });
});
