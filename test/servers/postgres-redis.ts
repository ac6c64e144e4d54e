/**
 * Makes sure the Postgres and Redis the tests use answer. They are the machine's own services
 * (`.ci/run` starts them when they are down); a missing one fails the whole run with a clear reason.
 */
import pg from 'pg';
import { Redis } from 'ioredis';
import { migrate } from '../../shared/db/migrate.ts';
import { TEMPLATE_DATABASE, TEST_POSTGRES_URL, TEST_REDIS_URL } from './ports.ts';

/** Rebuilds the template database from the migrations, so every test file clones a current schema. */
export async function preparePostgresTemplate(): Promise<void> {
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(`Postgres is not reachable at ${TEST_POSTGRES_URL} (start it, or set TEST_DATABASE_URL): ${(error as Error).message}`);
  }
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${TEMPLATE_DATABASE}`;
  await migrate(url.toString());
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
