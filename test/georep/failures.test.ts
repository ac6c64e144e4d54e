/**
 * Replication when things go wrong, on real servers: a source not there yet (retried with the
 * queue's backoff, Quay §2.5), a destination down for a while (the others proceed; it is retried
 * without spending attempts and completes once back), a copy whose bytes are not the blob (never
 * recorded), and GC racing a copy in flight (no placement recorded for a collected blob, no copy
 * left behind), then GC after replication removing every copy.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { imagestoragereplication } from '../../queues/imagestoragereplication.ts';
import { sha256 } from '../../registry/v2/test-support.ts';
import { collectBlobs } from '../../shared/db/gc/collect.ts';
import { drainPendingDeletions } from '../../shared/db/gc/pending-deletions.ts';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { blobKey } from '../../shared/storage/index.ts';
import { RADOSGW } from '../servers/storage-endpoints.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { createGeoFixture, ensureRadosgwBucket, locations, metricSum, SECOND_BUCKET, type GeoFixture } from './fixture.ts';

const FAST = { sourceProbeDelaysMs: [50, 100], locationRetryMs: 200, locationRetryMaxMs: 1000 };

async function blobId(f: GeoFixture, digest: string): Promise<number> {
  const { rows } = await f.registry.db.query<{ id: number }>(`SELECT id FROM imagestorage WHERE content_checksum = $1`, [digest]);
  return rows[0]!.id;
}

async function job(f: GeoFixture, id: number) {
  return (await f.producer.queue(imagestoragereplication.name).getJob(`imagestoragereplication/${id}`))!;
}

/** Uploads a blob to pod A (leased, no manifest), runs `before`, and enqueues its replication directly. */
async function uploadAndEnqueue(f: GeoFixture, repository: string, bytes: Buffer, before?: (digest: string) => Promise<void>): Promise<{ digest: string; id: number }> {
  const client = await f.client(repository);
  const digest = await client.uploadBlob(repository, bytes, 'monolithic');
  await before?.(digest);
  const id = await blobId(f, digest);
  const { rows } = await f.registry.db.query<{ id: number }>(`SELECT id FROM namespace WHERE username = $1`, [repository.split('/')[0]]);
  await f.producer.enqueue(imagestoragereplication, { v: 1, storageId: id, namespaceId: rows[0]!.id, digest });
  return { digest, id };
}

/** GC of blob `id`, retried while a recording transaction holds its row or digest lock for a moment. */
async function collectUntilDone(f: GeoFixture, id: number): Promise<{ pendingIds: number[] }> {
  for (let tries = 0; ; tries += 1) {
    const collected = await collectBlobs(f.registry.db, [id]);
    if (collected.blobs === 1) return collected;
    if (collected.busyIds.length === 0 || tries > 50) throw new Error(`GC did not collect blob ${id}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Drains GC's pending deletions `ids` until none is left (a record whose digest lock was busy stays for a later drain). */
async function drainAll(f: GeoFixture, ids: number[]): Promise<number> {
  let deleted = 0;
  for (let tries = 0; tries < 50; tries += 1) {
    deleted += (await drainPendingDeletions(f.registry.db, f.storageA, { ids })).deleted;
    const { rows } = await f.registry.db.query(`SELECT 1 FROM pendingstoragedeletion WHERE id = ANY($1::bigint[])`, [ids]);
    if (rows.length === 0) return deleted;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('pending deletions stayed busy');
}

describe('a source not there yet, and a copy that is not the blob', () => {
  let f: GeoFixture;
  beforeAll(async () => {
    f = await createGeoFixture('georepsrc', { usstorage: locations.radosgw(), eustorage: locations.azurite() });
    await f.startWorker(FAST);
  });
  afterAll(async () => { await f?.close(); });

  it('retries a blob whose source object is missing with backoff, spending an attempt, and completes once it appears', async () => {
    const bytes = randomBytes(3000);
    const { digest, id } = await uploadAndEnqueue(f, 'erin/late', bytes, (d) => f.storageA.store('usstorage').delete(blobKey(d)));
    await waitFor(async () => (await f.jobState(id)) === 'delayed', 20_000, 50);
    expect((await job(f, id)).attemptsMade).toBe(1);
    expect((await job(f, id)).failedReason).toContain('cannot find blob');
    expect(await f.placements(digest)).toEqual(['usstorage']);
    await f.storageA.store('usstorage').put(blobKey(digest), bytes);
    await (await job(f, id)).promote(); // the queue's backoff is 300 s; the test does not wait for it
    await waitFor(async () => (await f.placements(digest)).length === 2, 20_000, 50);
    expect(await f.objectDigest('eustorage', digest)).toBe(digest);
  });

  it('never records a copy whose bytes do not hash to the digest, and leaves nothing at the destination', async () => {
    const bytes = randomBytes(5000);
    const corrupt = Buffer.from(bytes);
    corrupt[100] = corrupt[100]! ^ 0xff;
    const { digest, id } = await uploadAndEnqueue(f, 'erin/corrupt', bytes, async (d) => { await f.storageA.store('usstorage').put(blobKey(d), corrupt); });
    const before = await metricSum('quayfleet_replication_copies_total', { location: 'eustorage', outcome: 'corrupt' });
    await waitFor(async () => (await job(f, id))?.attemptsMade >= 1, 20_000, 50);
    expect(await f.placements(digest)).toEqual(['usstorage']);
    expect(await f.objectDigest('eustorage', digest)).toBeUndefined();
    expect(await metricSum('quayfleet_replication_copies_total', { location: 'eustorage', outcome: 'corrupt' })).toBeGreaterThan(before);
  });
});

describe('a server-side copy between two buckets of one RadosGW whose source is not the blob', () => {
  let f: GeoFixture;
  beforeAll(async () => {
    await ensureRadosgwBucket(SECOND_BUCKET);
    f = await createGeoFixture('georepsscorrupt', { usstorage: locations.radosgw(), eustorage: locations.radosgw(SECOND_BUCKET) });
  });
  afterAll(async () => { await f?.close(); });

  // A server-side copy trusts the bytes of the recorded source (verified when it was recorded) and
  // checks the size of the very object it copied (If-Match): a truncated source is caught there.
  it('deletes the server-side copy of a source of the wrong size and records nothing', async () => {
    await f.startWorker(FAST);
    const bytes = randomBytes(4000);
    const digest = sha256(bytes);
    const corrupt = bytes.subarray(0, 3000);
    // The bytes under the digest's key are truncated before the job runs.
    const client = await f.client('erin/ss');
    const uploaded = await client.uploadBlob('erin/ss', bytes, 'monolithic');
    await f.storageA.store('usstorage').put(blobKey(uploaded), corrupt);
    const id = await blobId(f, digest);
    const { rows } = await f.registry.db.query<{ id: number }>(`SELECT id FROM namespace WHERE username = 'erin'`);
    await f.producer.enqueue(imagestoragereplication, { v: 1, storageId: id, namespaceId: rows[0]!.id, digest });
    await waitFor(async () => (await job(f, id))?.attemptsMade >= 1, 20_000, 50);
    expect((await job(f, id)).failedReason).toContain('corrupt');
    expect(await f.placements(digest)).toEqual(['usstorage']);
    expect(await f.objectDigest('eustorage', digest)).toBeUndefined();
  });
});

describe('a destination down for a while, and GC racing a copy', () => {
  let f: GeoFixture;
  let proxy: TcpProxy;
  beforeAll(async () => {
    await ensureRadosgwBucket(SECOND_BUCKET);
    proxy = await startTcpProxy({ host: RADOSGW.host, port: RADOSGW.port });
    f = await createGeoFixture('georepdown', {
      usstorage: locations.radosgw(), eustorage: locations.azurite(), apstorage: locations.radosgw(SECOND_BUCKET, proxy.port),
    });
    await f.startWorker(FAST);
  });
  afterEach(async () => {
    proxy.throttle(undefined);
    await proxy.start().catch(() => undefined); // already listening
  });
  afterAll(async () => {
    await f?.close();
    await proxy?.stop();
  });

  it('copies to the locations that answer, keeps retrying the one that is down without spending attempts, and completes once it is back', async () => {
    await proxy.stop();
    const bytes = randomBytes(20_000);
    const { digest, id } = await uploadAndEnqueue(f, 'frank/down', bytes);
    await waitFor(async () => (await f.placements(digest)).includes('eustorage'), 20_000, 50);
    expect(await f.placements(digest)).toEqual(['eustorage', 'usstorage']);
    await waitFor(async () => (await metricSum('quayfleet_replication_copies_total', { location: 'apstorage', outcome: 'failed' })) >= 2, 30_000, 100);
    const waiting = await job(f, id);
    expect(waiting.attemptsMade).toBe(0);
    await proxy.start();
    await waitFor(async () => (await f.placements(digest)).length === 3, 30_000, 100);
    expect(await f.objectDigest('apstorage', digest)).toBe(digest);
  });

  it('GC collecting the blob during the copy: no placement is recorded and the copy is removed', async () => {
    proxy.throttle(512 * 1024);
    const bytes = randomBytes(2 * 1024 * 1024);
    const start = proxy.bytesUp;
    const { digest, id } = await uploadAndEnqueue(f, 'frank/race', bytes);
    await waitFor(() => proxy.bytesUp - start > 256 * 1024, 30_000, 20);
    // The blob's lease ends: it is garbage, and GC collects it while the copy to apstorage runs.
    await f.registry.db.query(`UPDATE uploadedblob SET expires_at = now() - interval '1 hour' WHERE blob_id = $1`, [id]);
    const collected = await collectUntilDone(f, id);
    await drainAll(f, collected.pendingIds);
    proxy.throttle(undefined);
    await waitFor(async () => (await f.jobState(id)) === 'absent', 30_000, 100);
    expect(await f.placements(digest)).toEqual([]);
    for (const location of f.names) expect([location, await f.objectDigest(location, digest)]).toEqual([location, undefined]);
  });

  it('GC after replication deletes every copy', async () => {
    const bytes = randomBytes(10_000);
    const { digest, id } = await uploadAndEnqueue(f, 'frank/gc', bytes);
    await waitFor(async () => (await f.placements(digest)).length === 3, 20_000, 50);
    await f.registry.db.query(`UPDATE uploadedblob SET expires_at = now() - interval '1 hour' WHERE blob_id = $1`, [id]);
    const collected = await collectUntilDone(f, id);
    expect(await drainAll(f, collected.pendingIds)).toBe(3);
    expect(await f.placements(digest)).toEqual([]);
    for (const location of f.names) expect(await f.objectDigest(location, digest)).toBeUndefined();
  });
});

describe('STORAGE_REPLICATION_PROCESSING_SECONDS (Quay reservation time)', () => {
  let f: GeoFixture;
  let proxy: TcpProxy;
  beforeAll(async () => {
    await ensureRadosgwBucket(SECOND_BUCKET);
    proxy = await startTcpProxy({ host: RADOSGW.host, port: RADOSGW.port });
    f = await createGeoFixture('georepreserve', { usstorage: locations.radosgw(), apstorage: locations.radosgw(SECOND_BUCKET, proxy.port) }, {
      extraConfig: { STORAGE_REPLICATION_PROCESSING_SECONDS: 1 },
    });
    await f.startWorker(FAST);
  });
  afterAll(async () => {
    await f?.close();
    await proxy?.stop();
  });

  it('aborts a copy that runs past it, spending an attempt and recording nothing, and a later attempt completes', async () => {
    proxy.throttle(128 * 1024);
    const bytes = randomBytes(1024 * 1024);
    const { digest, id } = await uploadAndEnqueue(f, 'gina/slow', bytes);
    await waitFor(async () => (await job(f, id))?.attemptsMade >= 1, 30_000, 50);
    expect((await job(f, id)).failedReason).toContain('STORAGE_REPLICATION_PROCESSING_SECONDS (1 s)');
    expect(await f.placements(digest)).toEqual(['usstorage']);
    proxy.throttle(undefined);
    await (await job(f, id)).promote();
    await waitFor(async () => (await f.placements(digest)).length === 2, 30_000, 50);
    expect(await f.objectDigest('apstorage', digest)).toBe(digest);
  });
});
