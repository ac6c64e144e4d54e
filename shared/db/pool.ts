/**
 * The Postgres pool. One per process (Quay: up to 20 connections per process). Functions in this
 * folder take a `Queryable` (a pool or a client inside a transaction) and never open transactions
 * on their own: the caller decides the transaction boundary with `withTransaction`.
 */
import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that can run a query: the pool or a client holding a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

// bigint columns (ids, sizes, ms timestamps) fit in a JS number for every realistic registry
// (2^53 bytes is 8 PiB); parse them as numbers so rows are plain data.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export interface PoolOptions {
  connectionString: string;
  /** Maximum connections in this process's pool. */
  max?: number;
  /** Application name shown in pg_stat_activity. */
  applicationName?: string;
}

/** Creates the process pool. Idle clients that error (server restart) are dropped, not fatal. */
export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 20,
    application_name: options.applicationName ?? 'quayfleet',
    idleTimeoutMillis: 30_000,
  });
  pool.on('error', () => {
    // An idle client lost its connection; the pool replaces it on next use.
  });
  return pool;
}

/**
 * Runs `fn` in a transaction on one client: commits when it resolves, rolls back when it throws.
 * Retries the whole function on serialization failures and deadlocks (SQLSTATE 40001/40P01),
 * which the caller's idempotent transaction body makes safe.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (tx: pg.PoolClient) => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      const code = (error as { code?: string }).code;
      if ((code === '40001' || code === '40P01') && attempt < attempts) continue;
      throw error;
    } finally {
      client.release();
    }
  }
}
