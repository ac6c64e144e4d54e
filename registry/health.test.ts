/**
 * The front end's health keys are Quay's, each backed by a real check that turns false when what
 * it checks breaks: a closed Postgres port, a full disk (a threshold no volume meets), a closed
 * HTTP listener, a key too short to sign with, a closed Redis port, a storage directory that
 * cannot be created.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../shared/config/index.ts';
import { createPool, type Pool } from '../shared/db/pool.ts';
import { runHealthChecks } from '../shared/runtime/health.ts';
import { createDistributedStorage, type DistributedStorage } from '../shared/storage/distributed.ts';
import { REDIS_URL } from '../test/helpers/redis.ts';
import { startTestRegistry, type TestRegistry } from '../test/helpers/registry.ts';
import { buildRegistryApp } from './app.ts';
import { registryHealthChecks, type RegistryHealthDeps } from './health.ts';

let registry: TestRegistry;
let selfUrl: string;
let redis: Redis;
let deadRedis: Redis;
let deadDb: Pool;
let brokenStorage: DistributedStorage;

const INSTANCE_KEYS = ['auth', 'database', 'disk_space', 'registry_gunicorn', 'service_key', 'web_gunicorn'];

beforeAll(async () => {
  registry = await startTestRegistry({ label: 'health' });
  selfUrl = await registry.listen();
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  deadRedis = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  deadRedis.on('error', () => undefined);
  deadDb = createPool({ connectionString: 'postgres://postgres@127.0.0.1:1/none', max: 1 });
  // A LocalStorage directory under a regular file can never be created.
  const file = path.join(registry.storagePath, 'a-file');
  await fs.writeFile(file, 'x');
  brokenStorage = await createDistributedStorage(parseConfig({
    DISTRIBUTED_STORAGE_CONFIG: { default: ['LocalStorage', { storage_path: path.join(file, 'storage') }] }, DISTRIBUTED_STORAGE_PREFERENCE: ['default'],
  }).quay);
});
afterAll(async () => {
  redis.disconnect();
  deadRedis.disconnect();
  await deadDb.end();
  await brokenStorage.close();
  await registry.close();
});

function deps(overrides: Partial<RegistryHealthDeps> = {}): RegistryHealthDeps {
  return {
    db: registry.db, redis, storage: registry.deps.storage, config: registry.deps.config, tokenSecret: registry.deps.tokenSecret, selfUrl,
    diskPaths: [registry.storagePath], diskThreshold: 0.01, diskWarningThreshold: 0.1, ...overrides,
  };
}

async function services(kind: 'instance' | 'endtoend' | 'warning', overrides: Partial<RegistryHealthDeps> = {}) {
  const report = await runHealthChecks(registryHealthChecks(deps(overrides))[kind], { warning: kind === 'warning', timeoutMs: 3000 });
  return { ...report.data.services, status_code: report.status_code };
}

describe('front end health', () => {
  it("answers Quay's keys on /health/instance, /health/endtoend and /health/warning, all healthy, in Quay's envelope", async () => {
    const app = await buildRegistryApp({ ...registry.deps, health: registryHealthChecks(deps()) });
    try {
      const instance = await app.inject({ method: 'GET', url: '/health/instance' });
      expect(instance.statusCode).toBe(200);
      expect(instance.json()).toEqual({ data: { services: Object.fromEntries(INSTANCE_KEYS.map((k) => [k, true])) }, status_code: 200 });
      expect((await app.inject({ method: 'GET', url: '/health' })).json()).toEqual(instance.json());
      expect((await app.inject({ method: 'GET', url: '/health/endtoend' })).json())
        .toEqual({ data: { services: { auth: true, database: true, redis: true, storage: true } }, status_code: 200 });
      expect((await app.inject({ method: 'GET', url: '/health/warning' })).json())
        .toEqual({ data: { services: { disk_space_warning: false } }, status_code: 200 });
      for (const url of ['/_internal_ping', '/v1/_internal_ping']) {
        const ping = await app.inject({ method: 'GET', url });
        expect([ping.statusCode, ping.body]).toEqual([200, 'true']);
      }
    } finally {
      await app.close();
    }
  });

  it('reports database and auth false, with 503, when Postgres does not answer', async () => {
    const app = await buildRegistryApp({ ...registry.deps, health: registryHealthChecks(deps({ db: deadDb })) });
    try {
      const response = await app.inject({ method: 'GET', url: '/health/instance' });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toEqual({
        data: { services: { auth: false, database: false, disk_space: true, registry_gunicorn: true, service_key: true, web_gunicorn: true } }, status_code: 503,
      });
    } finally {
      await app.close();
    }
    expect(await services('endtoend', { db: deadDb })).toMatchObject({ auth: false, database: false, redis: true, storage: true, status_code: 503 });
  });

  it('reports disk_space false below DISKSPACE_HEALTH_THRESHOLD and raises disk_space_warning below DISKSPACE_HEALTH_WARNING_THRESHOLD', async () => {
    // No volume has 100 % free: a threshold of 1 is a full disk for the check.
    expect(await services('instance', { diskThreshold: 1 })).toMatchObject({ disk_space: false, database: true, status_code: 503 });
    expect(await services('warning', { diskWarningThreshold: 1 })).toEqual({ disk_space_warning: true, status_code: 503 });
    const config = parseConfig({ DISKSPACE_HEALTH_THRESHOLD: 0.5, DISKSPACE_HEALTH_WARNING_THRESHOLD: 0.6 });
    expect([config.quay.DISKSPACE_HEALTH_THRESHOLD, config.quay.DISKSPACE_HEALTH_WARNING_THRESHOLD]).toEqual([0.5, 0.6]);
    expect(parseConfig({}).quay.DISKSPACE_HEALTH_THRESHOLD).toBe(0.01);
    expect(() => parseConfig({ DISKSPACE_HEALTH_THRESHOLD: 2 })).toThrow(/DISKSPACE_HEALTH_THRESHOLD/);
  });

  it('reports registry_gunicorn and web_gunicorn false when the HTTP listener does not answer', async () => {
    expect(await services('instance', { selfUrl: 'http://127.0.0.1:1' }))
      .toMatchObject({ registry_gunicorn: false, web_gunicorn: false, database: true, status_code: 503 });
  });

  it('reports service_key false when the instance key cannot sign a verifiable token', async () => {
    expect(await services('instance', { tokenSecret: new Uint8Array(16) })).toMatchObject({ service_key: false, auth: true, status_code: 503 });
  });

  it('reports redis and storage false on /health/endtoend when Redis or storage does not answer', async () => {
    expect(await services('endtoend', { redis: deadRedis })).toMatchObject({ redis: false, storage: true, database: true, status_code: 503 });
    expect(await services('endtoend', { storage: brokenStorage })).toMatchObject({ storage: false, redis: true, status_code: 503 });
  });
});
