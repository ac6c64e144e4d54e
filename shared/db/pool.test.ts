/**
 * Losing Postgres connections (pg_terminate_backend on the test database's backends) never crashes
 * the process: every client the pool or createClient makes has an 'error' listener, idle or
 * checked out, and the pool connects anew once the server answers. Before the listener, each case
 * below ended in an unhandled 'error' event (vitest reports it and fails the run).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { withGcLock } from './gc/locks.ts';
import { inPlanSnapshot } from './gc/plan.ts';
import { createClient, createPool, withTransaction, type Pool } from './pool.ts';
import { isDatabaseUnavailable } from './unavailable.ts';

let db: TestDatabase;
let admin: Pool;
beforeAll(async () => {
  db = await createTestDatabase('pool');
  admin = createPool({ connectionString: db.url, max: 1 });
});
afterAll(async () => {
  await admin.end();
  await db.drop();
});

/** Terminates every backend of the test database but the admin pool's own; returns how many. */
async function terminateBackends(except: number[] = []): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND NOT (pid = ANY($1::int[]))`, [except]);
  return rows[0]!.n;
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('a lost connection', () => {
  it('on a checked-out client that sits idle is reported, not thrown; its queries fail as unavailable and the pool reconnects', async () => {
    const lost: Error[] = [];
    const pool = createPool({ connectionString: db.url, max: 2, onConnectionLost: (error) => lost.push(error) });
    try {
      const client = await pool.connect();
      await client.query('SELECT 1');
      expect(await terminateBackends()).toBeGreaterThanOrEqual(1);
      await until(() => lost.length > 0);
      const error = await client.query('SELECT 1').then(() => undefined, (e: unknown) => e);
      expect(isDatabaseUnavailable(error)).toBe(true);
      client.release();
      expect(pool.totalCount).toBe(0); // the dead client was dropped, not returned to the pool
      expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it('in the middle of a transaction rejects withTransaction with an unavailable error, and the next one succeeds', async () => {
    const pool = createPool({ connectionString: db.url, max: 2 });
    try {
      const error = await withTransaction(pool, async (tx) => {
        await tx.query('SELECT 1');
        await terminateBackends();
        await new Promise((resolve) => setTimeout(resolve, 100));
        await tx.query('SELECT 1');
      }).then(() => undefined, (e: unknown) => e);
      expect(isDatabaseUnavailable(error)).toBe(true);
      expect(await withTransaction(pool, async (tx) => (await tx.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one)).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it("of GC's lock holder while the locked work runs leaves the process alive and the lock free again", async () => {
    const pool = createPool({ connectionString: db.url, max: 3 });
    try {
      const held = await withGcLock(pool, { repositoryId: 1 }, async () => {
        // The lock's own connection sits checked out and idle while the work runs on the pool.
        await terminateBackends();
        await new Promise((resolve) => setTimeout(resolve, 200));
        return 'done';
      });
      expect(held).toEqual({ locked: true, value: 'done' });
      expect(await withGcLock(pool, { repositoryId: 1 }, async () => 'again')).toEqual({ locked: true, value: 'again' });
    } finally {
      await pool.end();
    }
  });

  it("of GC's plan snapshot rejects with an unavailable error", async () => {
    const pool = createPool({ connectionString: db.url, max: 2 });
    try {
      const error = await inPlanSnapshot(pool, async (snapshot) => {
        await terminateBackends();
        await new Promise((resolve) => setTimeout(resolve, 100));
        return snapshot.query('SELECT 1');
      }).then(() => undefined, (e: unknown) => e);
      expect(isDatabaseUnavailable(error)).toBe(true);
      expect((await pool.query('SELECT 1')).rowCount).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it('of a standalone client (createClient) is reported to its listener', async () => {
    const lost: Error[] = [];
    const client = createClient({ connectionString: db.url, onConnectionLost: (error) => lost.push(error) });
    await client.connect();
    await client.query('LISTEN anything');
    await terminateBackends();
    await until(() => lost.length > 0);
    expect(isDatabaseUnavailable(lost[0])).toBe(true);
    await client.end().catch(() => undefined);
  });
});

describe('isDatabaseUnavailable', () => {
  it('is true for a refused connection and a terminated backend, false for errors of the statement itself', async () => {
    const closed = createPool({ connectionString: 'postgres://postgres@127.0.0.1:1/none', max: 1 });
    const refused = await closed.query('SELECT 1').then(() => undefined, (e: unknown) => e);
    await closed.end();
    expect(isDatabaseUnavailable(refused)).toBe(true);

    const pool = createPool({ connectionString: db.url, max: 1 });
    try {
      const terminated = await pool.query('SELECT pg_terminate_backend(pg_backend_pid())').then(() => undefined, (e: unknown) => e);
      expect(isDatabaseUnavailable(terminated)).toBe(true);
      const syntax = await pool.query('SELEC 1').then(() => undefined, (e: unknown) => e);
      const unique = await pool.query(`SELECT 1/0`).then(() => undefined, (e: unknown) => e);
      expect([isDatabaseUnavailable(syntax), isDatabaseUnavailable(unique), isDatabaseUnavailable(new Error('x')), isDatabaseUnavailable(undefined)])
        .toEqual([false, false, false, false]);
      expect(isDatabaseUnavailable(new Error('wrapped', { cause: terminated }))).toBe(true);
    } finally {
      await pool.end();
    }
  });
});
