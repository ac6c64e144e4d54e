/**
 * The durable storage-deletion path: records survive storage errors, a re-pushed digest keeps its
 * object, a push holding the digest lock is never raced, every location is cleaned.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectRepository } from '../../shared/db/gc/collect.ts';
import { tryLockBlobDigests } from '../../shared/db/gc/locks.ts';
import { drainPendingDeletions, type BlobStores } from '../../shared/db/gc/pending-deletions.ts';
import { lockBlobDigest } from '../../shared/db/locks.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';
import { holdingTransaction } from '../helpers/db.ts';
import { blob, count, createGcFixture, manifest, namespace, objectExists, repository, tag, type GcFixture, type TestBlob } from './fixtures.ts';

let f: GcFixture;
beforeAll(async () => { f = await createGcFixture('gcpending', ['local_us', 'local_eu']); });
afterAll(async () => { await f.close(); });

let seq = 0;
/** A repository whose only manifest (linking `blobs`) has a tag past the (0 s) time machine. */
async function garbage(blobs: TestBlob[]): Promise<number> {
  const ns = await namespace(f, `p${++seq}`, 0);
  const id = await repository(f, ns, 'r');
  const m = await manifest(f, id, { blobs });
  await tag(f, id, 'x', m, { endMs: Date.now() - 1000 });
  return id;
}

/** Stores whose batch delete fails for location `broken` (`mode`: throw, or report each key failed). */
function brokenStores(broken: string, mode: 'throw' | 'report'): BlobStores {
  return {
    store(name: string): ObjectStore {
      const real = f.storage.store(name);
      if (name !== broken) return real;
      return Object.assign(Object.create(real) as ObjectStore, {
        deleteMany: async (keys: readonly string[]) => {
          if (mode === 'throw') throw new Error('connection reset');
          return { deleted: [], failed: keys.map((key) => ({ key, error: new Error('SlowDown') })) };
        },
      });
    },
  };
}

describe('drainPendingDeletions', () => {
  it('deletes the object at every placement', async () => {
    const b = await blob(f, { locations: ['local_us', 'local_eu'] });
    const collected = await collectRepository(f.pool, await garbage([b]));
    expect(collected.pendingIds).toHaveLength(2);
    const drained = await drainPendingDeletions(f.pool, f.storage, { ids: collected.pendingIds });
    expect(drained).toMatchObject({ deleted: 2, bytes: 2 * b.size, failed: 0 });
    expect(await objectExists(f, b.digest, 'local_us')).toBe(false);
    expect(await objectExists(f, b.digest, 'local_eu')).toBe(false);
  });

  it.each(['throw', 'report'] as const)('keeps the record with attempts and last_error when storage fails (%s), then retries', async (mode) => {
    const b = await blob(f, { locations: ['local_us', 'local_eu'] });
    const { pendingIds } = await collectRepository(f.pool, await garbage([b]));
    const failed = await drainPendingDeletions(f.pool, brokenStores('local_eu', mode), { ids: pendingIds });
    expect(failed).toMatchObject({ deleted: 1, failed: 1 });
    const { rows } = await f.pool.query(`SELECT attempts, last_error FROM pendingstoragedeletion WHERE id = ANY($1)`, [pendingIds]);
    expect(rows).toEqual([{ attempts: 1, last_error: mode === 'throw' ? 'connection reset' : 'SlowDown' }]);
    expect(await objectExists(f, b.digest, 'local_eu')).toBe(true);
    expect(await drainPendingDeletions(f.pool, f.storage, { ids: pendingIds })).toMatchObject({ deleted: 1, failed: 0 });
    expect(await objectExists(f, b.digest, 'local_eu')).toBe(false);
    expect(await count(f, 'pendingstoragedeletion', 'id = ANY($1)', [pendingIds])).toBe(0);
  });

  it('keeps the object when a push re-created the digest after its rows were deleted', async () => {
    const b = await blob(f, { bytes: Buffer.from('re-pushed content') });
    const { pendingIds } = await collectRepository(f.pool, await garbage([b]));
    const again = await blob(f, { bytes: Buffer.from('re-pushed content') });
    expect(again.digest).toBe(b.digest);
    expect(await drainPendingDeletions(f.pool, f.storage, { ids: pendingIds })).toMatchObject({ deleted: 0, kept: 1 });
    expect(await objectExists(f, b.digest)).toBe(true);
    expect(await count(f, 'pendingstoragedeletion', 'id = ANY($1)', [pendingIds])).toBe(0);
  });

  it('leaves a record alone while a push holds its digest lock, and drains it afterwards', async () => {
    const b = await blob(f);
    const { pendingIds } = await collectRepository(f.pool, await garbage([b]));
    await holdingTransaction(f.pool, async (client) => {
      await lockBlobDigest(client, b.digest);
      expect(await drainPendingDeletions(f.pool, f.storage, { ids: pendingIds })).toMatchObject({ deleted: 0, busy: 1 });
      expect(await objectExists(f, b.digest)).toBe(true);
    });
    expect(await drainPendingDeletions(f.pool, f.storage, { ids: pendingIds })).toMatchObject({ deleted: 1 });
  });

  it('skips blob rows whose digest a push holds, leaving them for a later run', async () => {
    const b = await blob(f);
    const id = await garbage([b]);
    await holdingTransaction(f.pool, async (client) => {
      await lockBlobDigest(client, b.digest);
      const result = await collectRepository(f.pool, id);
      expect(result).toMatchObject({ manifests: 1, blobs: 0, busy: 1 });
    });
    expect(await count(f, 'imagestorage', 'id = $1', [b.id])).toBe(1);
  });
});

describe('tryLockBlobDigests', () => {
  it('takes exactly the lock lockBlobDigest takes', async () => {
    const digest = (await blob(f)).digest;
    await holdingTransaction(f.pool, async (holder) => {
      await lockBlobDigest(holder, digest);
      const other = await withTransaction(f.pool, (tx) => tryLockBlobDigests(tx, [digest, 'sha256:other']));
      expect([...other]).toEqual(['sha256:other']);
    });
    await withTransaction(f.pool, async (tx) => {
      expect([...(await tryLockBlobDigests(tx, [digest]))]).toEqual([digest]);
      const waiter = await f.pool.connect();
      try {
        const { rows } = await waiter.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtextextended('blobdigest:' || $1, 0)) AS ok`, [digest]);
        expect(rows[0]!.ok).toBe(false);
      } finally {
        waiter.release();
      }
    });
  });
});
