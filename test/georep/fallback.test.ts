/**
 * A copy at the preferred placement that is not the blob (truncated, or the same size with other
 * bytes) on real servers: the job copies from the next recorded placement in the same attempt,
 * spending none, and never records the bad bytes.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagestoragereplication } from '../../queues/imagestoragereplication.ts';
import { sha256 } from '../../registry/v2/test-support.ts';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { blobKey } from '../../shared/storage/index.ts';
import { createGeoFixture, locations, metricSum, type GeoFixture } from './fixture.ts';

const FAST = { sourceProbeDelaysMs: [50, 100], locationRetryMs: 200, locationRetryMaxMs: 1000 };

describe('a corrupt copy at the preferred placement', () => {
  let f: GeoFixture;
  beforeAll(async () => {
    // usstorage (RadosGW) is preferred; eustorage (Azurite) holds the blob too; gcsstorage (the GCS
    // emulator) lacks it.
    f = await createGeoFixture('georepfallback', { usstorage: locations.radosgw(), eustorage: locations.azurite(), gcsstorage: locations.gcs() });
    await f.startWorker(FAST);
  });
  afterAll(async () => { await f?.close(); });

  /** Pushes `bytes` to usstorage, places a good copy at eustorage, replaces usstorage's with `corrupt`, and enqueues the job. */
  async function replicateWithCorruptPreferred(repository: string, bytes: Buffer, corrupt: Buffer): Promise<{ digest: string }> {
    const client = await f.client(repository);
    const digest = await client.uploadBlob(repository, bytes, 'monolithic');
    expect(digest).toBe(sha256(bytes));
    await f.storageA.store('eustorage').put(blobKey(digest), bytes);
    const { rows: [blob] } = await f.registry.db.query<{ id: number }>(
      `INSERT INTO imagestorageplacement (storage_id, location_id)
         SELECT s.id, l.id FROM imagestorage s, imagestoragelocation l WHERE s.content_checksum = $1 AND l.name = 'eustorage'
       RETURNING storage_id AS id`, [digest]);
    await f.storageA.store('usstorage').put(blobKey(digest), corrupt);
    const { rows: [ns] } = await f.registry.db.query<{ id: number }>(`SELECT id FROM namespace WHERE username = $1`, [repository.split('/')[0]]);
    await f.producer.enqueue(imagestoragereplication, { v: 1, storageId: Number(blob!.id), namespaceId: ns!.id, digest });
    return { digest };
  }

  /** Failed and corrupt copies counted so far (a failed attempt or a deferral counts one). */
  const failuresCounted = async (): Promise<number> => (await metricSum('quayfleet_replication_copies_total', { outcome: 'failed' }))
    + (await metricSum('quayfleet_replication_copies_total', { outcome: 'corrupt' }));

  async function expectCopiedFromEustorageInOneAttempt(digest: string, failuresBefore: number): Promise<void> {
    // A failed attempt would wait out the queue's backoff (300 s); a deferral would count a failure.
    await waitFor(async () => (await f.placements(digest)).includes('gcsstorage'), 30_000, 50);
    expect(await failuresCounted()).toBe(failuresBefore);
    expect(await f.placements(digest)).toEqual(['eustorage', 'gcsstorage', 'usstorage']);
    expect(await f.objectDigest('gcsstorage', digest)).toBe(digest);
  }

  it('truncated (a buffered copy): copies from the next placement in the same attempt', async () => {
    const bytes = randomBytes(40_000);
    const failuresBefore = await failuresCounted();
    const { digest } = await replicateWithCorruptPreferred('frank/small', bytes, bytes.subarray(0, 30_000));
    await expectCopiedFromEustorageInOneAttempt(digest, failuresBefore);
  });

  it('same size, other bytes (a streamed copy, above the buffered size): copies from the next placement, nothing read back', async () => {
    const bytes = randomBytes(5 * 1024 * 1024 + 123);
    const corrupt = Buffer.from(bytes);
    corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 10) ^ 0xff, corrupt.length - 10);
    const readsBefore = await metricSum('quayfleet_storage_operation_duration_seconds_count', { operation: 'get', driver: 'GoogleCloudStorage' });
    const failuresBefore = await failuresCounted();
    const { digest } = await replicateWithCorruptPreferred('frank/large', bytes, corrupt);
    await expectCopiedFromEustorageInOneAttempt(digest, failuresBefore);
    // The copy at gcsstorage was not read back (objectDigest above reads it once, after the job).
    expect(await metricSum('quayfleet_storage_operation_duration_seconds_count', { operation: 'get', driver: 'GoogleCloudStorage' })).toBe(readsBefore + 1);
  });
});
