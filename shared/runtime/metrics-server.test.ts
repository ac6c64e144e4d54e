import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../db/pool.ts';
import { REDIS_URL } from '../../test/helpers/redis.ts';
import { TEST_POSTGRES_URL } from '../../test/servers/ports.ts';
import { databaseCheck, redisCheck } from './health.ts';
import { startMetricsServer, type MetricsServer } from './metrics-server.ts';
import './queue-gauges.ts';

let pool: Pool;
let redis: Redis;
let server: MetricsServer;
let warningActive = false;

beforeAll(async () => {
  pool = createPool({ connectionString: TEST_POSTGRES_URL, max: 2 });
  redis = new Redis(REDIS_URL);
  server = await startMetricsServer({
    port: 0,
    healthTimeoutMs: 1500, // generous: a loaded CI machine can take a while to open a connection
    health: {
      instance: { database: databaseCheck(pool), redis: redisCheck(redis) },
      endtoend: {
        database: databaseCheck(pool),
        redis: redisCheck(redis),
        storage: async () => { throw new Error('bucket unreachable'); },
        auth: () => new Promise<boolean>(() => undefined), // never answers: the timeout decides
      },
      warning: { disk_space_warning: async () => warningActive },
    },
  });
});
afterAll(async () => {
  await server.close();
  await server.close();
  redis.disconnect();
  await pool.end();
});

async function get(path: string): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe('metrics and health server', () => {
  it("answers /health/instance and its /health alias with 200 in Quay's envelope", async () => {
    for (const path of ['/health/instance', '/health', '/health/instance/']) {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.body).toBe('{"data":{"services":{"database":true,"redis":true}},"status_code":200}');
    }
  });

  it('answers 503 when a dependency fails or does not answer in time, naming it', async () => {
    const res = await get('/health/endtoend');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({
      data: { services: { database: true, redis: true, storage: false, auth: false } }, status_code: 503,
    });
  });

  it('answers /health/live with 200 while dependencies fail: liveness asks only whether the process answers', async () => {
    expect((await get('/health/endtoend')).status).toBe(503);
    for (const path of ['/health/live', '/health/live/']) {
      expect(await get(path)).toMatchObject({ status: 200, type: 'application/json', body: '{"data":{"services":{}},"status_code":200}' });
    }
  });

  it('answers /health/warning with 503 while a warning is active', async () => {
    warningActive = false;
    expect(await get('/health/warning')).toMatchObject({ status: 200, body: '{"data":{"services":{"disk_space_warning":false}},"status_code":200}' });
    warningActive = true;
    expect(await get('/health/warning')).toMatchObject({ status: 503, body: '{"data":{"services":{"disk_space_warning":true}},"status_code":503}' });
  });

  it('serves Prometheus text on /metrics, and 404 elsewhere', async () => {
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/# TYPE quay_queue_items_available gauge/);
    expect((await get('/nope')).status).toBe(404);
  });
});
