/**
 * The reconciler (sweep.ts) on real servers: a tick finds a blob a required location lacks with no
 * job for it (here: never enqueued, as after a lost job or an added location) and queues it, and
 * the worker copies it; the cursor resumes where the tick stopped and wraps around at the end; a
 * dead-lettered blob is queued again.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagestoragereplication } from '../../queues/imagestoragereplication.ts';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { blobKey } from '../../shared/storage/index.ts';
import { createGeoFixture, locations, type GeoFixture } from './fixture.ts';

const FAST = { sourceProbeDelaysMs: [20], locationRetryMs: 200, locationRetryMaxMs: 1000 };

async function cursor(f: GeoFixture): Promise<{ afterId: number; passes: number }> {
  const { rows } = await f.registry.db.query<{ after_id: string; passes: string }>(`SELECT after_id, passes FROM replicationsweep`);
  return { afterId: Number(rows[0]!.after_id), passes: Number(rows[0]!.passes) };
}

/** Enqueues one sweep tick (what the schedule does every minute) and waits until it has run. */
async function tick(f: GeoFixture): Promise<void> {
  const before = await cursor(f);
  await f.producer.enqueue(imagestoragereplication, { v: 1, sweep: true });
  await waitFor(async () => {
    const now = await cursor(f);
    return now.afterId !== before.afterId || now.passes !== before.passes;
  }, 20_000, 50);
  await waitFor(async () => (await f.producer.queue(imagestoragereplication.name).getJob('imagestoragereplication/sweep')) === undefined, 20_000, 50);
}

describe('the replication reconciler', () => {
  let f: GeoFixture;
  beforeAll(async () => {
    f = await createGeoFixture('georepsweep', { usstorage: locations.radosgw(), eustorage: locations.azurite() });
    await f.startWorker(FAST);
  });
  afterAll(async () => { await f?.close(); });

  it('queues a blob that a required location lacks and no job covers; the worker copies it; the cursor wraps at the end', async () => {
    const client = await f.client('hana/lost');
    // An upload without a manifest enqueues nothing (Quay replicates on manifest push).
    const digest = await client.uploadBlob('hana/lost', randomBytes(3000), 'monolithic');
    expect(await f.placements(digest)).toEqual(['usstorage']);
    await tick(f);
    await waitFor(async () => (await f.placements(digest)).length === 2, 20_000, 50);
    expect(await f.objectDigest('eustorage', digest)).toBe(digest);
    // The page held every blob: the next tick finds the table exhausted and starts a new pass.
    const { rows } = await f.registry.db.query<{ id: string }>(`SELECT max(id) AS id FROM imagestorage`);
    expect((await cursor(f)).afterId).toBe(Number(rows[0]!.id));
    await tick(f);
    expect(await cursor(f)).toMatchObject({ afterId: 0, passes: 1 });
  });

  it('queues a dead-lettered blob again', async () => {
    const client = await f.client('hana/dead');
    const bytes = randomBytes(2000);
    const digest = await client.uploadBlob('hana/dead', bytes, 'monolithic');
    const { rows } = await f.registry.db.query<{ id: number; ns: number }>(
      `SELECT s.id, n.id AS ns FROM imagestorage s, namespace n WHERE s.content_checksum = $1 AND n.username = 'hana'`, [digest]);
    const { id, ns } = rows[0]!;
    // Its source is gone: each attempt fails; the last one dead-letters the job.
    await f.storageA.store('usstorage').delete(blobKey(digest));
    await f.producer.enqueue(imagestoragereplication, { v: 1, storageId: id, namespaceId: ns, digest });
    const queue = f.producer.queue(imagestoragereplication.name);
    for (;;) {
      const job = await queue.getJob(`imagestoragereplication/${id}`);
      const state = await job?.getState();
      if (state === 'failed') break;
      if (state === 'delayed') await job!.promote(); // the queue's backoff is 300 s
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await f.storageA.store('usstorage').put(blobKey(digest), bytes);
    await tick(f);
    await waitFor(async () => (await f.placements(digest)).length === 2, 20_000, 50);
  });
});
