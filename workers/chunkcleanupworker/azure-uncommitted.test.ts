/**
 * Uncommitted blocks on Azure (Azurite): the stale-multipart step discards the staged blocks of
 * writes that ended (aborted, or abandoned and aborted by the step itself) and of streamed puts a
 * crash interrupted longer ago than the threshold; it keeps the blocks of a live upload older than
 * the threshold (a session owns it), of an ownerless upload younger than it, and every committed
 * blob, including an empty committed one that also has staged blocks.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry as metrics } from '../../shared/metrics/index.ts';
import { loadStorageDrivers } from '../../shared/storage/drivers/index.ts';
import { uploadKey } from '../../shared/storage/keys.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';
import { formatReport } from '../../bin/commands/uploads.ts';
import { createGcFixture, namespace, repository, type GcFixture } from '../../test/gc/fixtures.ts';
import { AZURITE } from '../../test/servers/storage-endpoints.ts';
import { runUploadCleanup } from './cleanup.ts';
import { recordCleaned } from './metrics.ts';
import { STALE_MULTIPART_MS, type UploadCleanupSettings } from './settings.ts';

await loadStorageDrivers();

const root = `uncommitted-test-${randomBytes(4).toString('hex')}`;
const container = new ContainerClient(`${AZURITE.endpoint}/${AZURITE.container}`, new StorageSharedKeyCredential(AZURITE.accountName, AZURITE.accountKey));
const raw = (key: string) => container.getBlockBlobClient(`${root}/${key}`);

/** The blob's staged block count, or undefined when Azure no longer knows the blob. */
async function staged(key: string): Promise<number | undefined> {
  try {
    return (await raw(key).getBlockList('uncommitted')).uncommittedBlocks?.length ?? 0;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw error;
  }
}

async function uncommittedCounter(): Promise<number> {
  const values = (await metrics.getSingleMetric('quayfleet_upload_cleanup_objects_total')?.get())?.values ?? [];
  return values.filter((v) => v.labels.kind === 'uncommitted').reduce((sum, v) => sum + v.value, 0);
}

describe('uncommitted blocks on AzureStorage (Azurite)', () => {
  let f: GcFixture;
  let store: ObjectStore;

  beforeAll(async () => {
    f = await createGcFixture('uploads_uncommitted', ['loc'], { loc: ['AzureStorage', {
      azure_container: AZURITE.container, azure_account_name: AZURITE.accountName, azure_account_key: AZURITE.accountKey, endpoint_url: AZURITE.endpoint, storage_path: root,
    }] });
    store = f.storage.store('loc');
  });
  afterAll(async () => {
    for await (const u of store.listMultipartUploads('')) await store.abortMultipartUpload(u);
    for await (const o of store.list('')) await store.delete(o.key);
    for await (const b of container.listBlobsFlat({ prefix: `${root}/`, includeUncommitedBlobs: true })) {
      await container.getBlockBlobClient(b.name).commitBlockList([]).catch(() => undefined);
      await container.getBlockBlobClient(b.name).deleteIfExists();
    }
    await f?.close();
  });

  it('discards the blocks of ended and abandoned writes older than the threshold; keeps live, young and committed ones', async () => {
    const abandoned = randomUUID(); // crashed multipart write: marker and blocks, no session
    await (await store.createMultipart(uploadKey(abandoned))).writePart(1, randomBytes(300), 300);
    const aborted = randomUUID(); // cancelled by its client: the marker went, its blocks stayed
    const abortedWriter = await store.createMultipart(uploadKey(aborted));
    await abortedWriter.writePart(1, randomBytes(200), 200);
    await abortedWriter.abort();
    const crashedPut = `${uploadKey(randomUUID())}.staged-aaaaaaaaaaaa`; // a streamed put's blocks, never committed
    await raw(crashedPut).stageBlock(Buffer.from(randomUUID()).toString('base64'), randomBytes(50), 50);
    const live = randomUUID(); // older than the threshold but a session still owns it
    const liveWriter = await store.createMultipart(uploadKey(live));
    await liveWriter.writePart(1, randomBytes(100), 100);
    const repositoryId = await repository(f, await namespace(f, 'uncommitted'), 'app');
    await f.pool.query(`INSERT INTO blobupload (repository_id, uuid, byte_count, location_id, storage_metadata, chunk_count, created, updated) VALUES ($1, $2, 100, $3, $4, 1, now(), now())`,
      [repositoryId, live, f.locationIds.get('loc'), JSON.stringify({ uploadId: liveWriter.uploadId, parts: 1 })]);
    const committed = `${uploadKey(randomUUID())}.staged-bbbbbbbbbbbb`;
    await store.put(committed, Buffer.from('committed bytes'));
    await raw(committed).stageBlock(Buffer.from('x').toString('base64'), 'zz', 2);
    const committedEmpty = `${uploadKey(randomUUID())}.staged-cccccccccccc`;
    await store.put(committedEmpty, Buffer.alloc(0));
    await raw(committedEmpty).stageBlock(Buffer.from('y').toString('base64'), 'zz', 2);

    // Azurite keeps whole seconds: the threshold falls between the writes above and the one below.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const thresholdAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const young = randomUUID(); // ownerless, but younger than the threshold
    await (await store.createMultipart(uploadKey(young))).writePart(1, randomBytes(100), 100);

    const settings: UploadCleanupSettings = {
      sessionThresholdMs: 2 * 24 * 3600_000, multipartThresholdMs: Date.now() - thresholdAt, cleanFolder: true, cleanMultipart: true, everySeconds: 3600, handLeasesToGc: false,
    };
    expect(STALE_MULTIPART_MS).toBe(24 * 3600_000);
    const run = { nowMs: Date.now(), sessions: false, multipart: true, folder: false, keepItems: 10 };
    // A dry run counts the blocks of writes already ended (the abandoned one still has its marker).
    const dry = await runUploadCleanup(f.pool, f.storage, settings, { ...run, dryRun: true });
    expect(dry.locations[0]!.uncommitted).toMatchObject({ objects: 2, bytes: 250, failed: 0 });
    expect(await staged(uploadKey(aborted))).toBe(1);

    const before = await uncommittedCounter();
    const report = await runUploadCleanup(f.pool, f.storage, settings, { ...run, onCleaned: recordCleaned });
    expect(report.locations[0]!.multipart).toMatchObject({ aborted: 1, failed: 0 });
    expect(report.locations[0]!.uncommitted).toMatchObject({ objects: 3, bytes: 550, failed: 0 });
    expect(new Set(report.locations[0]!.uncommitted!.items.map((i) => i.key))).toEqual(new Set([uploadKey(abandoned), uploadKey(aborted), crashedPut]));
    expect(await uncommittedCounter() - before).toBe(3);
    expect(formatReport(report)).toContain('loc: uncommitted blocks of ended writes: removed 3 blobs (550 bytes), kept 0 owned by sessions, 0 failed');

    for (const gone of [uploadKey(abandoned), uploadKey(aborted), crashedPut]) expect(await staged(gone)).toBeUndefined();
    expect(await staged(uploadKey(live))).toBe(1);
    expect(await staged(uploadKey(young))).toBe(1);
    expect(await staged(committedEmpty)).toBe(1);
    expect(await staged(committed)).toBe(1);
    expect(Buffer.concat(await (await store.get(committed)).toArray()).toString()).toBe('committed bytes');
    expect((await store.stat(committedEmpty)).size).toBe(0);

    // The live upload completes normally afterwards.
    expect((await liveWriter.complete()).size).toBe(100);
  });
});
