/**
 * A fresh, migrated database per test file, cloned from the template the global setup built
 * (graphile-worker's pattern: cloning takes milliseconds, migrating takes a second).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool, type Pool } from '../../shared/db/pool.ts';
import { TEMPLATE_DATABASE, TEST_POSTGRES_URL } from '../servers/ports.ts';

export interface TestDatabase {
  readonly url: string;
  readonly pool: Pool;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/** Clones the template into a new database named after `label`; call `drop()` in afterAll. */
export async function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  const name = `qf_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase().slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  const pool = createPool({ connectionString: url.toString(), max: 10 });
  return {
    url: url.toString(),
    pool,
    async drop() {
      await pool.end();
      const dropper = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await dropper.connect();
      try {
        await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await dropper.end();
      }
    },
  };
}

/**
 * Runs `fn` with a connection of its own inside an open transaction, as a second party a test
 * races against (a GC holding row locks, a push holding a digest lock). `fn` may COMMIT; whatever
 * it leaves open is rolled back, and the connection goes back to the pool.
 */
export async function holdingTransaction<T>(pool: Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    return await fn(client);
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
}
