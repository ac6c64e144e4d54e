import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidPayloadError, repositorygc } from '../../queues/index.ts';
import { createTestDatabase, holdingTransaction, type TestDatabase } from '../../test/helpers/db.ts';
import { claimOutboxBatch, countOutboxRows, deleteOutboxRows, enqueueInTransaction, enqueueManyInTransaction } from './outbox.ts';
import { withTransaction } from './pool.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase('outbox'); });
afterAll(async () => { await db.drop(); });

const purge = (repositoryId: number) => ({ v: 1 as const, repositoryId, markerId: 1, originalName: 'app', namespace: 'acme' });

describe('outbox', () => {
  it('records a validated job intent in the caller\'s transaction, keyed by its dedupe id', async () => {
    const runAt = new Date(Date.now() + 3_600_000);
    const jobId = await withTransaction(db.pool, (tx) => enqueueInTransaction(tx, repositorygc, purge(11), { runAt }));
    expect(jobId).toBe('repositorygc/11');
    const { rows } = await db.pool.query('SELECT queue_name, job_id, payload, run_at FROM outbox WHERE job_id = $1', [jobId]);
    expect(rows).toEqual([{ queue_name: 'repositorygc', job_id: 'repositorygc/11', payload: purge(11), run_at: runAt }]);
    await db.pool.query('DELETE FROM outbox');
  });

  it('writes nothing when the transaction rolls back, or when the payload is invalid', async () => {
    await expect(withTransaction(db.pool, async (tx) => {
      await enqueueInTransaction(tx, repositorygc, purge(12));
      throw new Error('the change failed');
    })).rejects.toThrow('the change failed');
    await expect(withTransaction(db.pool, (tx) => enqueueInTransaction(tx, repositorygc, { ...purge(13), markerId: -1 })))
      .rejects.toThrow(InvalidPayloadError);
    expect(await countOutboxRows(db.pool)).toBe(0);
  });

  it('claims due and delayed rows with their delay, skipping rows another transaction holds', async () => {
    await withTransaction(db.pool, async (tx) => {
      await enqueueManyInTransaction(tx, repositorygc, [purge(21), purge(22)]);
      await enqueueInTransaction(tx, repositorygc, purge(23), { runAt: new Date(Date.now() + 60_000) });
    });
    await holdingTransaction(db.pool, async (first) => {
      const held = await claimOutboxBatch(first, ['repositorygc'], 1);
      expect(held.map((r) => r.jobId)).toEqual(['repositorygc/21']);
      const others = await withTransaction(db.pool, (tx) => claimOutboxBatch(tx, ['repositorygc'], 10));
      expect(others.map((r) => [r.jobId, r.delayMs > 55_000])).toEqual([['repositorygc/22', false], ['repositorygc/23', true]]);
      expect(others[0]!.delayMs).toBe(0);
      expect(await withTransaction(db.pool, (tx) => claimOutboxBatch(tx, ['notification'], 10))).toEqual([]);
      await deleteOutboxRows(first, held.map((r) => r.id));
      await first.query('COMMIT');
    });
    expect(await countOutboxRows(db.pool)).toBe(2);
  });
});
