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
  /**
   * How long a checkout may wait, for a free client or a new connection, before it fails. Default
   * none: pg-pool counts the wait for a free client too, so a bound turns a busy pool into errors.
   */
  connectionTimeoutMs?: number;
  /**
   * Told about every connection this pool loses (backend terminated, server restarted), idle or
   * checked out. The connection is already dead: its queries failed and the pool drops it when it
   * is released, so this is for logging only.
   */
  onConnectionLost?: (error: Error) => void;
}

/**
 * Creates the process pool. A lost connection never crashes the process: every client gets an
 * `'error'` listener the moment the pool creates it, so it has one while idle *and* while checked
 * out (pg-pool listens only to idle clients; a checked-out client whose backend is terminated
 * emits `'error'` to nobody, which kills Node). Every checkout, by `pool.connect()`,
 * `withTransaction` or `pool.query`, hands out a client created here. Queries on a lost connection
 * reject (`isDatabaseUnavailable`), `release()` drops it, and the next checkout connects anew.
 */
export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 20,
    application_name: options.applicationName ?? 'quayfleet',
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: options.connectionTimeoutMs,
    // Finds a dead peer (a partition, a host gone) without waiting for the next query.
    keepAlive: true,
  });
  const lost = connectionLostListener(options.onConnectionLost);
  pool.on('connect', (client) => { client.on('error', lost); });
  // pg-pool re-emits an idle client's error here; the listener above has already seen it.
  pool.on('error', () => undefined);
  return pool;
}

/** Options of a standalone connection (`createClient`). */
export interface ClientOptions {
  connectionString: string;
  applicationName?: string;
  connectionTimeoutMs?: number;
  /** Told when the connection is lost after it was established; see PoolOptions.onConnectionLost. */
  onConnectionLost?: (error: Error) => void;
}

/**
 * A connection of its own, outside the pool (LISTEN, admin statements), with the same guarantee
 * as the pool's: an `'error'` listener is attached before it connects, so losing it never crashes
 * the process. The caller still `connect()`s and `end()`s it. Lint forbids `new pg.Client`
 * elsewhere.
 */
export function createClient(options: ClientOptions): pg.Client {
  const client = new pg.Client({
    connectionString: options.connectionString,
    application_name: options.applicationName ?? 'quayfleet',
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    keepAlive: true,
  });
  client.on('error', connectionLostListener(options.onConnectionLost));
  return client;
}

function connectionLostListener(onLost: ((error: Error) => void) | undefined): (error: Error) => void {
  return (error) => {
    try {
      onLost?.(error);
    } catch {
      // A failing logger must not turn a handled connection loss into a crash.
    }
  };
}

/** Options of `withTransaction`. */
export interface TransactionOptions {
  /** Tries in all on serialization failures and deadlocks (default 5). */
  readonly attempts?: number;
  /**
   * Constant statements sent with BEGIN in the same round trip, e.g.
   * `SET LOCAL synchronous_commit = off`; never interpolate values into them.
   */
  readonly settings?: string;
}

/**
 * Runs `fn` in a transaction on one client: commits when it resolves, rolls back when it throws.
 * Retries the whole function on serialization failures and deadlocks (SQLSTATE 40001/40P01),
 * which the caller's idempotent transaction body makes safe.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (tx: pg.PoolClient) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  // One simple-protocol query: BEGIN and the settings cost one round trip.
  const begin = options.settings ? `BEGIN; ${options.settings}` : 'BEGIN';
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect();
    try {
      await client.query(begin);
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
