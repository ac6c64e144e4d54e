/**
 * The storage-versus-database audit while GC and uploads run (the reliability parts audit a live
 * fleet): the listing of a location takes a while, and a placement GC deletes with its object, or
 * an object an upload writes and records, during it must not show as a missing object or an orphan.
 * A real missing object and a real orphan are still reported.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditStorage } from '../../shared/db/gc/audit.ts';
import type { BlobStores } from '../../shared/db/gc/pending-deletions.ts';
import type { ObjectStat, ObjectStore } from '../../shared/storage/types.ts';
import { blobKey } from '../../shared/storage/keys.ts';
import { blob, createGcFixture, type GcFixture } from './fixtures.ts';

let f: GcFixture;
beforeAll(async () => { f = await createGcFixture('gcauditrace'); });
afterAll(async () => { await f.close(); });

/** `f.storage` whose listing runs `during` after its first object and `atEnd` before it ends, yielding what `atEnd` returns. */
function racingStores(during: () => Promise<void>, atEnd: () => Promise<ObjectStat[]>): BlobStores {
  return {
    store(name: string): ObjectStore {
      const store = f.storage.store(name);
      return new Proxy(store, {
        get(target, property, receiver) {
          if (property !== 'list') return Reflect.get(target, property, receiver) as unknown;
          return async function* list(prefix: string): AsyncIterable<ObjectStat> {
            let first = true;
            for await (const object of target.list(prefix)) {
              yield object;
              if (first) { first = false; await during(); }
            }
            yield* await atEnd();
          };
        },
      });
    },
  };
}

describe('auditStorage during GC and uploads', () => {
  it('counts neither a blob GC deletes nor one an upload records during the listing, and still finds real ones', async () => {
    const location = f.storage.preferredLocation;
    const store = f.storage.store(location);
    const kept = await blob(f);
    const collected = await Promise.all([blob(f), blob(f), blob(f)]);
    const reallyMissing = await blob(f);
    await store.delete(blobKey(reallyMissing.digest));
    const orphanBytes = Buffer.from('an object no row accounts for');
    const orphanKey = blobKey(`sha256:${'0'.repeat(64)}`);
    await store.put(orphanKey, orphanBytes, { contentLength: orphanBytes.length });
    let uploaded = '';
    const stores = racingStores(
      // GC, between the audit's reading of the rows and its listing's end: placements and objects go.
      async () => {
        await f.pool.query('DELETE FROM imagestorageplacement WHERE storage_id = ANY($1)', [collected.map((b) => b.id)]);
        for (const b of collected) await store.delete(blobKey(b.digest));
      },
      // An upload during the listing: its object is listed, its placement recorded after the rows were read.
      async () => {
        const b = await blob(f);
        uploaded = blobKey(b.digest);
        return [await store.stat(uploaded)];
      },
    );
    const audit = await auditStorage(f.pool, stores, [location]);
    const [report] = audit.locations;
    expect(report!.missingObjects).toEqual([blobKey(reallyMissing.digest)]);
    expect(report!.orphanObjects).toEqual([orphanKey]);
    expect(uploaded).not.toBe('');
    expect(await store.exists(blobKey(kept.digest))).toBe(true);
  });
});
