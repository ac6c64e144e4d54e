/**
 * Resolving upload commit intents: an intent whose push committed (a placement of its digest at
 * its location) is dropped and the object kept; one whose push died has its object deleted; one
 * still inside its lease, or whose digest a push holds, is left alone.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveUploadIntents } from '../../shared/db/gc/upload-intents.ts';
import { lockBlobDigest } from '../../shared/db/locks.ts';
import { recordUploadIntent, settleUploadIntent } from '../../shared/db/upload-intents.ts';
import { blobKey } from '../../shared/storage/keys.ts';
import { holdingTransaction } from '../helpers/db.ts';
import { blob, count, createGcFixture, digestOf, objectExists, type GcFixture } from './fixtures.ts';

let f: GcFixture;
beforeAll(async () => { f = await createGcFixture('gcintents', ['local_us', 'local_eu']); });
afterAll(async () => { await f.close(); });

const past = (): Date => new Date(Date.now() - 1000);

async function strayObject(location: string): Promise<{ digest: string; size: number }> {
  const bytes = randomBytes(300);
  const digest = digestOf(bytes);
  await f.storage.store(location).put(blobKey(digest), bytes);
  return { digest, size: bytes.length };
}

async function intent(location: string, digest: string, size: number, resolveAfter: Date): Promise<number> {
  return recordUploadIntent(f.pool, { locationId: f.locationIds.get(location)!, digest, objectKey: blobKey(digest), sizeBytes: size, resolveAfter });
}

describe('resolveUploadIntents', () => {
  it('deletes the object of a dead push, keeps the object of one that committed, and leaves live ones', async () => {
    const dead = await strayObject('local_us');
    await intent('local_us', dead.digest, dead.size, past());
    const committed = await blob(f, { locations: ['local_us'] });
    await intent('local_us', committed.digest, committed.size, past());
    const live = await strayObject('local_us');
    await intent('local_us', live.digest, live.size, new Date(Date.now() + 3_600_000));
    // Recorded in another location only: the object here is still nobody's.
    const elsewhere = await blob(f, { locations: ['local_eu'] });
    await f.storage.store('local_us').put(blobKey(elsewhere.digest), randomBytes(elsewhere.size));
    await intent('local_us', elsewhere.digest, elsewhere.size, past());

    const result = await resolveUploadIntents(f.pool, f.storage);
    expect(result).toMatchObject({ deleted: 2, kept: 1, busy: 0, failed: 0, bytes: dead.size + elsewhere.size });
    expect(await objectExists(f, dead.digest, 'local_us')).toBe(false);
    expect(await objectExists(f, committed.digest, 'local_us')).toBe(true);
    expect(await objectExists(f, live.digest, 'local_us')).toBe(true);
    expect(await objectExists(f, elsewhere.digest, 'local_us')).toBe(false);
    expect(await objectExists(f, elsewhere.digest, 'local_eu')).toBe(true);
    expect(await count(f, 'uploadcommitintent')).toBe(1);
    await f.pool.query(`DELETE FROM uploadcommitintent`);
  });

  it('leaves an intent whose digest a push holds, and a push finds an intent GC resolved first', async () => {
    const stray = await strayObject('local_eu');
    const id = await intent('local_eu', stray.digest, stray.size, past());
    await holdingTransaction(f.pool, async (client) => {
      await lockBlobDigest(client, stray.digest);
      expect(await resolveUploadIntents(f.pool, f.storage)).toMatchObject({ busy: 1, deleted: 0 });
    });
    expect(await objectExists(f, stray.digest, 'local_eu')).toBe(true);
    expect(await resolveUploadIntents(f.pool, f.storage)).toMatchObject({ busy: 0, deleted: 1 });
    await holdingTransaction(f.pool, async (client) => {
      expect(await settleUploadIntent(client, id)).toBe(false);
    });
  });
});
