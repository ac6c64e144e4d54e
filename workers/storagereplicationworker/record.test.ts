/**
 * Recording placements against transactions holding digest locks, on a real Postgres: the batch
 * takes its locks in digest order whatever the order of its records, and a batch Postgres aborts
 * to break a deadlock (against a transaction taking several digest locks in another order) is sent
 * again instead of failing its jobs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLocations } from '../../shared/db/blobs.ts';
import { lockBlobDigest } from '../../shared/db/locks.ts';
import { recordPlacements, type PlacementRecord } from '../../shared/db/replication.ts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { retryDeadlock } from './handler.ts';

const digest = (c: string): string => `sha256:${c.repeat(64)}`;

describe('recordPlacements and digest locks', () => {
  let db: TestDatabase;
  const ids = new Map<string, number>();
  beforeAll(async () => {
    db = await createTestDatabase('georeprecord');
    await ensureLocations(db.pool, ['usstorage', 'eustorage']);
    const { rows } = await db.pool.query<{ id: string; digest: string }>(
      `INSERT INTO imagestorage (content_checksum, image_size) SELECT unnest($1::text[]), 10 RETURNING id, content_checksum AS digest`,
      [['1', '2', '3'].map(digest)]);
    for (const row of rows) ids.set(row.digest, Number(row.id));
  });
  afterAll(async () => { await db?.drop(); });

  const record = (c: string, etag?: string): PlacementRecord => ({ blob: { id: ids.get(digest(c))!, digest: digest(c) }, placements: [{ location: 'eustorage', etag }], namespaceId: 1 });

  /** Whether a session other than `except` holds the digest lock of `d`. */
  async function lockHeld(d: string, exceptPid: number): Promise<boolean> {
    const { rows } = await db.pool.query(
      `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> $2
          AND ((classid::bigint << 32) | objid::bigint) = hashtextextended('blobdigest:' || $1, 0)`, [d, exceptPid]);
    return rows.length > 0;
  }

  it('takes the locks of a batch in digest order, whatever the order of its records', async () => {
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await lockBlobDigest(holder, digest('2'));
      const { rows: [me] } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const recording = recordPlacements(db.pool, [record('3'), record('1'), record('2')]);
      // The batch waits on digest 2 holding digest 1 only: it never holds 3 while waiting for 2.
      for (let i = 0; i < 100 && !(await lockHeld(digest('1'), me!.pid)); i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await lockHeld(digest('1'), me!.pid)).toBe(true);
      expect(await lockHeld(digest('3'), me!.pid)).toBe(false);
      await holder.query('COMMIT');
      const after = await recording;
      expect(after.map((b) => b?.placements)).toEqual([['eustorage'], ['eustorage'], ['eustorage']]);
    } finally {
      holder.release();
    }
  });

  it('a batch Postgres aborts as a deadlock victim is sent again, and records its placements with their ETags', async () => {
    await db.pool.query(`DELETE FROM imagestorageplacement`);
    const other = await db.pool.connect();
    let calls = 0;
    const failures: string[] = [];
    try {
      await other.query('BEGIN');
      await lockBlobDigest(other, digest('2'));
      // The batch takes 1, then waits for 2; the other transaction then wants 1: a cycle. The batch
      // waited first, so its deadlock check (deadlock_timeout after) finds the cycle and aborts it.
      const recording = retryDeadlock(async () => {
        calls += 1;
        return recordPlacements(db.pool, [record('2', '"etag-2"'), record('1', '"etag-1"')]).catch((error: unknown) => {
          failures.push((error as { code?: string }).code ?? 'none');
          throw error;
        });
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      await lockBlobDigest(other, digest('1'));
      await other.query('COMMIT');
      const after = await recording;
      expect(failures).toEqual(['40P01']);
      expect(calls).toBe(2);
      expect(after.map((b) => b?.etags)).toEqual([{ eustorage: '"etag-2"' }, { eustorage: '"etag-1"' }]);
    } finally {
      other.release();
    }
  });
});
