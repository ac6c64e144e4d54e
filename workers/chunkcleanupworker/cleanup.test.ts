/**
 * Upload cleanup on every backend (Ceph RadosGW's S3 and Swift APIs, Azurite, the GCS emulator, the
 * filesystem): sessions inactive for 3 days are cancelled with their stored bytes, those inactive
 * for 1 day and live ones are kept; ownerless multipart writes and uploads-folder objects older than the
 * threshold go, newer ones and anything a session owns stay; afterwards nothing is left under
 * `uploads/` that no session owns, the storage-versus-database audit is clean, and the multipart
 * counters add up (started = completed + aborted + in flight).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditStorage } from '../../shared/db/gc/audit.ts';
import { registry as metrics } from '../../shared/metrics/index.ts';
import { loadStorageDrivers } from '../../shared/storage/drivers/index.ts';
import { uploadKey } from '../../shared/storage/keys.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';
import { createGcFixture, namespace, repository, type GcFixture } from '../../test/gc/fixtures.ts';
import { UPLOAD_BACKENDS } from '../../test/uploads/backends.ts';
import { runUploadCleanup } from './cleanup.ts';
import { bindUploadGauges } from './metrics.ts';
import { STALE_MULTIPART_MS, type UploadCleanupSettings } from './settings.ts';
import { UPLOADS_PREFIX, uploadUuidOf } from './storage-sweep.ts';

await loadStorageDrivers();

const DAY_MS = 24 * 3600_000;
const PART = 5 * 1024 * 1024; // S3's smallest non-final part, so every backend takes it

const DEFAULTS: UploadCleanupSettings = {
  sessionThresholdMs: 2 * DAY_MS, multipartThresholdMs: STALE_MULTIPART_MS, cleanFolder: true, cleanMultipart: true, everySeconds: 3600, handLeasesToGc: false,
};

async function counter(name: string): Promise<number> {
  const values = (await metrics.getSingleMetric(name)?.get())?.values ?? [];
  return values.reduce((sum, v) => sum + v.value, 0);
}

async function multipartCounters(): Promise<{ started: number; completed: number; aborted: number }> {
  return {
    started: await counter('quay_multipart_uploads_started_total'),
    completed: await counter('quay_multipart_uploads_completed_total'),
    aborted: await counter('quay_multipart_uploads_aborted_total'),
  };
}

describe.each(UPLOAD_BACKENDS)('upload cleanup on %s', (label, driver) => {
  let f: GcFixture;
  let store: ObjectStore;
  let repositoryId: number;
  let locationId: number;
  const start = { started: 0, completed: 0, aborted: 0 };

  beforeAll(async () => {
    const params = driver();
    f = await createGcFixture(`uploads_${label.slice(0, 5)}`, ['loc'], params ? { loc: params } : {});
    store = f.storage.store('loc');
    repositoryId = await repository(f, await namespace(f, 'cleanup'), 'app');
    locationId = f.locationIds.get('loc')!;
    Object.assign(start, await multipartCounters());
  });
  afterAll(async () => {
    // Whatever a failed assertion left behind goes, so the shared servers stay clean.
    for await (const u of store.listMultipartUploads('')) await store.abortMultipartUpload(u);
    for await (const o of store.list('')) await store.delete(o.key);
    await f?.close();
  });

  /** A session whose last chunk came `idleMs` ago, holding a staged object and a one-part multipart write. */
  async function session(idleMs: number, options: { claimedUntilMs?: number } = {}): Promise<{ uuid: string; staged: string; uploadId: string }> {
    const uuid = randomUUID();
    const writer = await store.createMultipart(uploadKey(uuid));
    await writer.writePart(1, randomBytes(PART), PART);
    const staged = `${uploadKey(uuid)}.staged-${randomBytes(6).toString('hex')}`;
    await store.put(staged, randomBytes(1000));
    const at = new Date(Date.now() - idleMs);
    const meta = { uploadId: writer.uploadId, parts: 1, tail: { key: staged, bytes: 1000 }, ...(options.claimedUntilMs ? { claim: { token: 't', untilMs: options.claimedUntilMs } } : {}) };
    await f.pool.query(
      `INSERT INTO blobupload (repository_id, uuid, byte_count, location_id, storage_metadata, chunk_count, created, updated) VALUES ($1, $2, $3, $4, $5, 2, $6, $7)`,
      [repositoryId, uuid, PART + 1000, locationId, JSON.stringify(meta), new Date(Date.now() - 5 * DAY_MS), at]);
    return { uuid, staged, uploadId: writer.uploadId };
  }

  async function storedUuids(): Promise<{ objects: Set<string>; multipart: Set<string> }> {
    const objects = new Set<string>();
    const multipart = new Set<string>();
    for await (const o of store.list(UPLOADS_PREFIX)) objects.add(uploadUuidOf(o.key) ?? o.key);
    for await (const u of store.listMultipartUploads(UPLOADS_PREFIX)) multipart.add(uploadUuidOf(u.key) ?? u.key);
    return { objects, multipart };
  }

  async function rows(): Promise<Set<string>> {
    const { rows: found } = await f.pool.query<{ uuid: string }>(`SELECT uuid::text AS uuid FROM blobupload`);
    return new Set(found.map((r) => r.uuid));
  }

  it('cancels sessions idle for 3 days with their bytes; keeps those idle for 1 day and live ones', async () => {
    const old = await session(3 * DAY_MS);
    const recent = await session(1 * DAY_MS);
    const busy = await session(3 * DAY_MS, { claimedUntilMs: Date.now() + 60_000 }); // a request is streaming into it
    const report = await runUploadCleanup(f.pool, f.storage, DEFAULTS, { nowMs: Date.now(), sessions: true, multipart: true, folder: true });
    expect(report.sessions).toMatchObject({ sessions: 1, objects: 2, bytes: PART + 1000, failed: 0 });
    expect(await rows()).toEqual(new Set([recent.uuid, busy.uuid]));
    const stored = await storedUuids();
    expect(stored.objects).toEqual(new Set([recent.uuid, busy.uuid]));
    expect(stored.multipart).toEqual(new Set([recent.uuid, busy.uuid]));
    expect(stored.objects.has(old.uuid)).toBe(false);
    // Whatever the age of their bytes, what a session owns is never swept.
    const zero = { ...DEFAULTS, sessionThresholdMs: 0, multipartThresholdMs: 0 };
    const swept = await runUploadCleanup(f.pool, f.storage, zero, { nowMs: Date.now() + 1000, sessions: false, multipart: true, folder: true });
    expect(swept.locations[0]!.multipart).toMatchObject({ aborted: 0, owned: 2 });
    expect(swept.locations[0]!.folder).toMatchObject({ objects: 0, owned: 2 });
    expect(await storedUuids()).toEqual(stored);
  });

  it('aborts ownerless multipart writes and deletes ownerless uploads-folder objects older than the threshold, and only those', async () => {
    const orphanOld = randomUUID();
    const oldWriter = await store.createMultipart(uploadKey(orphanOld));
    await oldWriter.writePart(1, randomBytes(100), 100);
    await store.put(`${uploadKey(orphanOld)}.staged-aaaaaaaaaaaa`, randomBytes(500));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const newFrom = Date.now();
    const orphanNew = randomUUID();
    const newWriter = await store.createMultipart(uploadKey(orphanNew));
    await newWriter.writePart(1, randomBytes(100), 100);
    const newStaged = `${uploadKey(orphanNew)}.staged-bbbbbbbbbbbb`;
    await store.put(newStaged, randomBytes(500));
    const before = await rows();

    // "3 days" and "1 day" scaled down: the threshold lies between the two ages (a second of
    // slack for backends that keep whole seconds), however slowly the servers answer.
    const short = (): [UploadCleanupSettings, number] => {
      const nowMs = Date.now();
      const thresholdMs = nowMs - newFrom + 1000;
      return [{ ...DEFAULTS, sessionThresholdMs: thresholdMs, multipartThresholdMs: thresholdMs }, nowMs];
    };
    const [drySettings, dryNow] = short();
    const dry = await runUploadCleanup(f.pool, f.storage, drySettings, { nowMs: dryNow, sessions: false, multipart: true, folder: true, dryRun: true, keepItems: 10 });
    expect(dry.locations[0]!.multipart).toMatchObject({ aborted: 1, items: [expect.objectContaining({ key: uploadKey(orphanOld) })] });
    expect(dry.locations[0]!.folder).toMatchObject({ objects: 1, bytes: 500 });
    expect((await storedUuids()).multipart.has(orphanOld)).toBe(true);

    const [settings, nowMs] = short();
    const report = await runUploadCleanup(f.pool, f.storage, settings, { nowMs, sessions: false, multipart: true, folder: true });
    expect(report.locations[0]!.multipart).toMatchObject({ aborted: 1, failed: 0 });
    expect(report.locations[0]!.folder).toMatchObject({ objects: 1, bytes: 500, failed: 0 });
    const stored = await storedUuids();
    expect(stored.multipart).toEqual(new Set([...before, orphanNew]));
    expect(stored.objects).toEqual(new Set([...before, orphanNew]));
    expect(await rows()).toEqual(before);

    // The newer orphans were kept only for their age: the live sessions' writes end here.
    await newWriter.complete();
    await store.deleteMany([uploadKey(orphanNew), newStaged]);
  });

  it('leaves storage matching the database and the multipart counters adding up', async () => {
    const audit = await auditStorage(f.pool, f.storage, ['loc']);
    expect(audit).toMatchObject({ ok: true, storageConsistent: true });
    const owned = await rows();
    const stored = await storedUuids();
    for (const uuid of [...stored.objects, ...stored.multipart]) expect(owned.has(uuid)).toBe(true);
    const now = await multipartCounters();
    const inFlight = stored.multipart.size;
    expect(now.started - start.started).toBe((now.completed - start.completed) + (now.aborted - start.aborted) + inFlight);
  });
});

describe('temp files of interrupted writes on LocalStorage', () => {
  it('are swept with the stale multipart writes, by the same age, and not in a dry run', async () => {
    const f = await createGcFixture('uploads_tmp', ['loc']);
    try {
      const tmp = path.join(f.storageConfig.loc![1].storage_path as string, '.quayfleet', 'tmp');
      await fs.mkdir(tmp, { recursive: true });
      const old = new Date(Date.now() - 2 * DAY_MS);
      await fs.writeFile(path.join(tmp, 'dead-write'), randomBytes(10));
      await fs.utimes(path.join(tmp, 'dead-write'), old, old);
      await fs.writeFile(path.join(tmp, 'live-write'), randomBytes(20));
      const run = { nowMs: Date.now(), sessions: false, multipart: true, folder: false };
      const dry = await runUploadCleanup(f.pool, f.storage, DEFAULTS, { ...run, dryRun: true });
      expect(dry.locations[0]!.temporary).toBeUndefined();
      const report = await runUploadCleanup(f.pool, f.storage, DEFAULTS, run);
      expect(report.locations[0]!.temporary).toEqual({ files: 1, bytes: 10 });
      expect(await fs.readdir(tmp)).toEqual(['live-write']);
    } finally {
      await f.close();
    }
  });
});

describe('abandoned-upload gauges', () => {
  it('count the sessions past the threshold and their bytes at scrape, and drop to zero once they are cancelled', async () => {
    const f = await createGcFixture('uploads_gauge', ['loc']);
    try {
      const repositoryId = await repository(f, await namespace(f, 'gauge'), 'app');
      const insert = (uuid: string, bytes: number, idleMs: number) => f.pool.query(
        `INSERT INTO blobupload (repository_id, uuid, byte_count, location_id, storage_metadata, created, updated) VALUES ($1, $2, $3, $4, '{"parts":0}', $5, $5)`,
        [repositoryId, uuid, bytes, f.locationIds.get('loc'), new Date(Date.now() - idleMs)]);
      await insert(randomUUID(), 1000, 3 * DAY_MS);
      await insert(randomUUID(), 2000, 3 * DAY_MS);
      await insert(randomUUID(), 4000, 1 * DAY_MS);
      bindUploadGauges(f.pool, DEFAULTS.sessionThresholdMs);
      const gauge = async (name: string) => (await metrics.getSingleMetric(name)!.get()).values[0]?.value;
      expect(await gauge('quayfleet_abandoned_uploads')).toBe(2);
      expect(await gauge('quayfleet_abandoned_upload_bytes')).toBe(3000);
      await runUploadCleanup(f.pool, f.storage, DEFAULTS, { nowMs: Date.now(), sessions: true, multipart: false, folder: false });
      expect(await gauge('quayfleet_abandoned_uploads')).toBe(0);
      expect(await gauge('quayfleet_abandoned_upload_bytes')).toBe(0);
    } finally {
      await f.close();
    }
  });
});
