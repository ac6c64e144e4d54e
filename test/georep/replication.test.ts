/**
 * Geo-replication end to end on real servers: pushes through the front end with replication on,
 * the outbox, BullMQ and the storagereplicationworker, then every blob in every required location
 * with its digest verified there; pulls through a pod preferring the other location, before and
 * after replication (the seed's usstorage/eustorage scenario); server-side copies between two
 * buckets of one RadosGW.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../registry/v2/test-support.ts';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { createGeoFixture, ensureRadosgwBucket, locations, metricSum, SECOND_BUCKET, type GeoFixture } from './fixture.ts';


/** Pushes an image of a config and `layers` random layers through pod A; returns every blob. */
async function pushImage(f: GeoFixture, repository: string, tag: string, layerSizes: number[]): Promise<Buffer[]> {
  const client = await f.client(repository);
  const config = Buffer.from(JSON.stringify({ tag, nonce: randomBytes(8).toString('hex') }));
  const layers = layerSizes.map((size) => randomBytes(size));
  await client.pushImage(repository, tag, config, layers);
  return [config, ...layers];
}

async function expectEverywhere(f: GeoFixture, blobs: Buffer[]): Promise<void> {
  for (const blob of blobs) {
    const digest = sha256(blob);
    await waitFor(async () => (await f.placements(digest)).length === f.names.length, 60_000, 100);
    expect(await f.placements(digest)).toEqual([...f.names].sort());
    for (const name of f.names) expect(await f.objectDigest(name, digest)).toBe(digest);
  }
}

const pairs = [
  { title: 'RadosGW and Azurite', entries: () => ({ usstorage: locations.radosgw(), eustorage: locations.azurite() }), driverB: 'AzureStorage' },
  { title: 'RadosGW and the GCS emulator', entries: () => ({ usstorage: locations.radosgw(), eustorage: locations.gcs() }), driverB: 'GoogleCloudStorage' },
];

for (const pair of pairs) {
  describe(`replication between ${pair.title}`, () => {
    let f: GeoFixture;
    beforeAll(async () => { f = await createGeoFixture('georep', pair.entries()); });
    afterAll(async () => { await f?.close(); });

    it('a pull through the pod preferring eustorage works before replication (read from usstorage)', async () => {
      const [config, layer] = await pushImage(f, 'alice/early', 'v1', [4096]);
      expect(await f.placements(sha256(layer!))).toEqual(['usstorage']);
      const podB = await f.client('alice/early', 'B');
      const response = await podB.request('GET', `/v2/alice/early/blobs/${sha256(layer!)}`);
      expect(response.statusCode).toBe(200);
      expect(sha256(response.rawPayload)).toBe(sha256(layer!));
      expect(sha256(config!)).toMatch(/^sha256:/);
    });

    it('copies every blob of a push to every location, verified, then pod B reads from eustorage', async () => {
      await f.startWorker();
      // Small blobs, one above the S3/GCS single-request sizes (a multipart write on the way).
      const blobs = await pushImage(f, 'alice/app', 'v1', [1, 100_000, 9 * 1024 * 1024]);
      await expectEverywhere(f, blobs);
      // The earlier push's blobs were queued before the worker ran: replicated too.
      const podB = await f.client('alice/app', 'B');
      const reads = await metricSum('quayfleet_storage_operation_duration_seconds_count', { driver: pair.driverB, operation: 'get' });
      const layer = blobs[2]!;
      const response = await podB.request('GET', `/v2/alice/app/blobs/${sha256(layer)}`);
      expect(response.statusCode).toBe(200);
      expect(sha256(response.rawPayload)).toBe(sha256(layer));
      expect(await metricSum('quayfleet_storage_operation_duration_seconds_count', { driver: pair.driverB, operation: 'get' })).toBe(reads + 1);
      expect(await metricSum('quayfleet_replication_copies_total', { location: 'eustorage', outcome: 'copied', method: 'stream' })).toBeGreaterThanOrEqual(4);
      expect(await metricSum('quayfleet_replication_bytes_total', { location: 'eustorage' })).toBeGreaterThanOrEqual(9 * 1024 * 1024 + 100_001);
    });

    it('enqueues one job for a blob a manifest lists twice', async () => {
      const layer = randomBytes(2000);
      const client = await f.client('alice/twice');
      const config = Buffer.from('{"twice":true}');
      await client.pushImage('alice/twice', 'v1', config, [layer, layer]);
      await expectEverywhere(f, [layer, config]);
      const { rows } = await f.registry.db.query(`SELECT id FROM imagestorage WHERE content_checksum = $1`, [sha256(layer)]);
      expect(await f.jobState((rows[0] as { id: number }).id)).toBe('absent'); // completed and removed
    });
  });
}

describe('replication between two buckets of one RadosGW', () => {
  let f: GeoFixture;
  beforeAll(async () => {
    await ensureRadosgwBucket(SECOND_BUCKET);
    f = await createGeoFixture('georepsame', { usstorage: locations.radosgw(), eustorage: locations.radosgw(SECOND_BUCKET) });
  });
  afterAll(async () => { await f?.close(); });

  it('copies server-side (no bytes through the worker), verified at the destination', async () => {
    await f.startWorker();
    const before = await metricSum('quayfleet_replication_copies_total', { location: 'eustorage', method: 'server_side', outcome: 'copied' });
    const streamed = await metricSum('quayfleet_replication_copies_total', { location: 'eustorage', method: 'stream' });
    const blobs = await pushImage(f, 'bob/same', 'v1', [10, 6 * 1024 * 1024]);
    await expectEverywhere(f, blobs);
    expect(await metricSum('quayfleet_replication_copies_total', { location: 'eustorage', method: 'server_side', outcome: 'copied' })).toBe(before + 3);
    expect(await metricSum('quayfleet_replication_copies_total', { location: 'eustorage', method: 'stream' })).toBe(streamed);
    // The push recorded the ETag its move answered, so each copy was one CopyObject checked
    // against it (no HEAD); the copy's ETag (the same object's) is recorded for the next hop.
    const { rows } = await f.registry.db.query<{ name: string; etag: string | null }>(
      `SELECT l.name, p.etag FROM imagestorageplacement p JOIN imagestoragelocation l ON l.id = p.location_id
         JOIN imagestorage s ON s.id = p.storage_id WHERE s.content_checksum = ANY($1::text[])`, [blobs.map((b) => sha256(b))]);
    expect(rows).toHaveLength(6);
    for (const row of rows) expect(row.etag, row.name).toMatch(/^"?[0-9a-f]{32}(-\d+)?"?$/);
  });
});

describe('three locations: the defaults plus a namespace region', () => {
  let f: GeoFixture;
  beforeAll(async () => {
    await ensureRadosgwBucket(SECOND_BUCKET);
    f = await createGeoFixture('georep3', {
      usstorage: locations.radosgw(), eustorage: locations.azurite(), apstorage: locations.radosgw(SECOND_BUCKET),
    }, { defaultLocations: ['usstorage', 'eustorage'] });
  });
  afterAll(async () => { await f?.close(); });

  it("copies to DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS, and to apstorage only the blobs of the namespace whose region it is", async () => {
    await f.startWorker();
    await f.client('carol/app');
    await f.registry.db.query(
      `INSERT INTO userregion (user_id, location_id) SELECT n.id, l.id FROM namespace n, imagestoragelocation l WHERE n.username = 'carol' AND l.name = 'apstorage'`);
    const carol = await pushImage(f, 'carol/app', 'v1', [5000]);
    const dave = await pushImage(f, 'dave/app', 'v1', [5000]);
    for (const blob of carol) {
      await waitFor(async () => (await f.placements(sha256(blob))).length === 3, 60_000, 100);
      expect(await f.objectDigest('apstorage', sha256(blob))).toBe(sha256(blob));
    }
    for (const blob of dave) await waitFor(async () => (await f.placements(sha256(blob))).length === 2, 60_000, 100);
    expect(await f.placements(sha256(dave[1]!))).toEqual(['eustorage', 'usstorage']);
    expect(await f.objectDigest('apstorage', sha256(dave[1]!))).toBeUndefined();
  });
});

describe('two LocalStorage directories, with STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE', () => {
  let f: GeoFixture;
  const dirs: string[] = [];
  beforeAll(async () => {
    for (const name of ['us', 'eu']) dirs.push(await fs.mkdtemp(path.join(os.tmpdir(), `qf-georep-${name}-`)));
    f = await createGeoFixture('georeplocal', {
      usstorage: ['LocalStorage', { storage_path: dirs[0] }], eustorage: ['LocalStorage', { storage_path: dirs[1] }],
    }, { extraConfig: { STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE: true } });
  });
  afterAll(async () => {
    await f?.close();
    for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
  });

  it('replicates on one machine (a file copy), for tests and single-host installs', async () => {
    await f.startWorker();
    const blobs = await pushImage(f, 'gina/local', 'v1', [3000]);
    await expectEverywhere(f, blobs);
  });
});
