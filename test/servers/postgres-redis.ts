/**
 * Makes sure the Postgres and Redis the tests use answer. They are the machine's own services
 * (`.ci/run` starts them when they are down); a missing one fails the whole run with a clear reason.
 */
import pg from 'pg';
import { Redis } from 'ioredis';
import { migrate } from '../../shared/db/migrate.ts';
import { TEMPLATE_DATABASE, TEST_POSTGRES_URL, TEST_REDIS_URL } from './ports.ts';

/**
 * Makes sure the template database for the current migrations exists. Concurrent runs serialize on
 * an advisory lock; a template left half-made by a killed run (no migrations table) is rebuilt.
 */
export async function preparePostgresTemplate(): Promise<void> {
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(`Postgres is not reachable at ${TEST_POSTGRES_URL} (start it, or set TEST_DATABASE_URL): ${(error as Error).message}`);
  }
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${TEMPLATE_DATABASE}`;
  try {
    await admin.query(`SELECT pg_advisory_lock(hashtext('quayfleet test template'))`);
    const { rowCount } = await admin.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [TEMPLATE_DATABASE]);
    if (rowCount && (await isMigrated(url.toString()))) return;
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
    await migrate(url.toString());
  } finally {
    await admin.end();
  }
}

async function isMigrated(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ ok: boolean }>(`SELECT to_regclass('public.pgmigrations') IS NOT NULL AS ok`);
    return rows[0]!.ok;
  } finally {
    await client.end();
  }
}

/** Fails with a clear reason when Redis does not answer PING. */
export async function checkRedis(): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(`Redis is not reachable at ${TEST_REDIS_URL} (start it, or set TEST_REDIS_URL): ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
}
