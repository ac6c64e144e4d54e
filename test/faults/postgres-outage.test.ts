/**
 * A real `quayfleet all` process loses Postgres under load (pushes, pulls and tag deletes through
 * the front end; the gcworker collecting what they delete) and must survive by itself: it stays
 * up, requests in flight answer 503 (never 500), no GC job is dead-lettered, /health/instance
 * reports the database down while it is, and everything works again once Postgres is back,
 * without a restart. Two faults: pg_terminate_backend of every backend of the process's database
 * (on the shared server), and a real restart of a private Postgres cluster.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../../shared/db/pool.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { TEST_REDIS_URL } from '../servers/ports.ts';
import {
  createUser, eventually, instanceHealth, metricValue, pushRound, pushToken, runLoad, startFleetProcess, LoadTally, type FleetProcess,
} from './fleet-process.ts';
import { startPrivatePostgres } from './private-postgres.ts';

// The fleet runs with the default queue prefix, so it gets a Redis database of its own (no other
// test uses database 11) instead of sharing the queues of whatever else runs on this server.
const REDIS_DB = 11;
const redisUrl = `${TEST_REDIS_URL.replace(/\/\d*$/, '')}/${REDIS_DB}`;
const redis = new Redis(redisUrl, { lazyConnect: true });
const PRIVATE_POSTGRES_PORT = 24561;
const FLEET_CONFIG = { GARBAGE_COLLECTION_FREQUENCY: 1 };
const PASSWORD = 'password-1';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeEach(async () => { await redis.flushdb(); });
afterAll(async () => {
  await redis.flushdb();
  redis.disconnect();
});

/** What both faults must leave behind once Postgres answers again. */
async function expectRecovered(fleet: FleetProcess, dbUri: string, token: string, gcBefore: number): Promise<void> {
  expect(fleet.alive(), fleet.output()).toBe(true);
  const health = await eventually('/health/instance healthy again', async () => {
    const h = await instanceHealth(fleet.metricsBase);
    return h.status === 200 ? h : undefined;
  });
  expect(health.services.database).toBe(true);
  // Pushes, pulls and deletes work again, on fresh connections.
  const tally = new LoadTally();
  expect(await eventually('a push round succeeds', () => pushRound(fleet.base, token, 'alice/app', tally))).toBe(true);
  // GC runs again (its deletes are the work the pushes just made).
  await eventually('GC collects again', async () => (await metricValue(fleet.metricsBase, 'quay_gc_iterations_total')) > gcBefore);
  // The outbox relay's LISTEN connection came back.
  const pool = createPool({ connectionString: dbUri, max: 1 });
  try {
    // Exactly one: a connection lost during LISTEN once reconnected twice and leaked the first.
    // Counted in this fleet's database only: fleets of other test files listen on the same server.
    const listening = async () => (await pool.query(
      `SELECT 1 FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'quayfleet-outbox-relay' AND query ILIKE 'LISTEN%'`)).rowCount;
    await eventually('the outbox relay listens again', async () => (await listening()) === 1).catch(async (error: Error) => {
      throw new Error(`${error.message} (${await listening()} LISTEN connections)`);
    });
  } finally {
    await pool.end();
  }
  // A transient outage dead-letters nothing.
  expect(await redis.zcard('quayfleet:garbagecollection:failed')).toBe(0);
  expect(fleet.output()).not.toMatch(/Unhandled|uncaught/i);
}

function expectOnly503(tally: LoadTally): void {
  expect(tally.unexpected(), JSON.stringify([...tally.counts])).toEqual([]);
  for (const body of tally.unavailableBodies) expect(JSON.parse(body)).toMatchObject({ errors: [{ code: 'UNAVAILABLE' }] });
}

describe('Postgres connection loss', { timeout: 420_000 }, () => {
  it('pg_terminate_backend of every backend, repeatedly, under pushes and GC: the process stays up and recovers', async () => {
    const database = await createTestDatabase('outage');
    let fleet: FleetProcess | undefined;
    const admin: Pool = createPool({ connectionString: database.url, max: 1 });
    try {
      fleet = await startFleetProcess({ dbUri: database.url, redisUrl, httpPort: 18561, metricsPort: 18571, config: FLEET_CONFIG });
      await createUser(database.url, 'alice', PASSWORD);
      const token = await pushToken(fleet.base, '127.0.0.1:18561', 'alice', PASSWORD, 'alice/app');
      const load = runLoad(fleet.base, token, 'alice/app', 3);
      await eventually('GC collects under load', async () => (await metricValue(fleet!.metricsBase, 'quay_gc_iterations_total')) > 0, 60_000);
      let terminated = 0;
      for (let round = 0; round < 10; round++) {
        const { rows } = await admin.query<{ n: number }>(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()`);
        terminated += rows[0]!.n;
        await sleep(300);
      }
      await sleep(1000);
      await load.stop();
      const gcAfterFaults = await metricValue(fleet.metricsBase, 'quay_gc_iterations_total');
      expect(terminated).toBeGreaterThan(10);
      expect(fleet.alive(), fleet.output()).toBe(true);
      expectOnly503(load.tally);
      expect(load.tally.count(/^manifest-put:201$/)).toBeGreaterThan(0);
      await expectRecovered(fleet, database.url, token, gcAfterFaults);
    } finally {
      await admin.end();
      await fleet?.stop();
      await database.drop();
    }
  });

  it('a restart of Postgres under pushes and GC: 503 and database down while it is away, everything back after, no restart', async () => {
    const postgres = await startPrivatePostgres(PRIVATE_POSTGRES_PORT);
    let fleet: FleetProcess | undefined;
    try {
      fleet = await startFleetProcess({ dbUri: postgres.url, redisUrl, httpPort: 18562, metricsPort: 18572, config: FLEET_CONFIG });
      await createUser(postgres.url, 'alice', PASSWORD);
      const token = await pushToken(fleet.base, '127.0.0.1:18562', 'alice', PASSWORD, 'alice/app');
      const load = runLoad(fleet.base, token, 'alice/app', 3);
      await eventually('GC collects under load', async () => (await metricValue(fleet!.metricsBase, 'quay_gc_iterations_total')) > 0, 60_000);

      await postgres.stop();
      const down = await eventually('/health/instance reports the database down', async () => {
        const h = await instanceHealth(fleet!.metricsBase);
        return h.status === 503 && h.services.database === false ? h : undefined;
      });
      expect(down.services.database).toBe(false);
      const pull = await fetch(`${fleet.base}/v2/alice/app/tags/list`, { headers: { authorization: `Bearer ${token}` } });
      expect(pull.status).toBe(503);
      expect(pull.headers.get('retry-after')).toBe('5');
      expect(await pull.json()).toEqual({ errors: [{ code: 'UNAVAILABLE', message: 'service unavailable', detail: { reason: 'the database is unavailable; retry later' } }] });
      const api = await fetch(`${fleet.base}/api/v1/repository/alice/app`, { headers: { authorization: `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}` } });
      expect(api.status).toBe(503);
      expect(await api.json()).toMatchObject({ status: 503, error_type: 'downstream_issue', title: 'downstream_issue' });
      await sleep(1500);
      expect(fleet.alive(), fleet.output()).toBe(true);

      await postgres.start();
      await eventually('/health/instance healthy again', async () => (await instanceHealth(fleet!.metricsBase)).status === 200);
      await sleep(1000);
      await load.stop();
      const gcAfterFaults = await metricValue(fleet.metricsBase, 'quay_gc_iterations_total');
      expectOnly503(load.tally);
      expect(load.tally.count(/:503$/)).toBeGreaterThan(0);
      await expectRecovered(fleet, postgres.url, token, gcAfterFaults);
    } finally {
      await fleet?.stop();
      await postgres.destroy();
    }
  });
});
