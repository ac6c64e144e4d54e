/**
 * Upload segments on Swift (RadosGW's Swift API), the backend Quay's `chunk_cleanup` exists for.
 * Through the real front end, a chunked push becomes a static large object at its content address
 * and a cancelled chunked session leaves nothing; and the `chunk_cleanup` job removes the segments
 * a crash left of a finished and of an abandoned upload, and nothing else: a live session's
 * segments, another upload's and a blob's own stay, checked on the container's raw listing.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChunkCleanupPayload } from '../../queues/chunk-cleanup.ts';
import { readAll } from '../../shared/storage/conformance/data.ts';
import { swiftParamsSchema, swiftSettings } from '../../shared/storage/drivers/swift-params.ts';
import { SwiftStore } from '../../shared/storage/drivers/swift.ts';
import { blobKey, uploadKey } from '../../shared/storage/keys.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';
import { V2Client, expectStatus, sha256 } from '../../registry/v2/test-support.ts';
import { cleanSegments } from '../../workers/chunkcleanupworker/segments.ts';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.ts';
import { RADOSGW_SWIFT } from '../servers/storage-endpoints.ts';

const MiB = 1024 * 1024;
const repo = 'alice/swift';
const root = `swift-segments-${randomBytes(4).toString('hex')}`;
const params = {
  auth_url: RADOSGW_SWIFT.authUrl, swift_user: RADOSGW_SWIFT.user, swift_password: RADOSGW_SWIFT.key,
  swift_container: RADOSGW_SWIFT.container, storage_path: root, segment_size_bytes: 5 * MiB,
};

let registry: TestRegistry;
let client: V2Client;
let store: ObjectStore;
/** The same container without the wrapper: its raw listing shows segments and markers. */
let raw: SwiftStore;

beforeAll(async () => {
  registry = await startTestRegistry({ label: 'swiftsegments', config: { DISTRIBUTED_STORAGE_CONFIG: { swift: ['SwiftStorage', params] }, DISTRIBUTED_STORAGE_PREFERENCE: ['swift'] } });
  await registry.createUser('alice', 'password1');
  client = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', [`repository:${repo}:pull,push`]));
  store = registry.deps.storage.store('swift');
  raw = new SwiftStore(swiftSettings(swiftParamsSchema.parse(params), {}));
});

afterAll(async () => {
  if (raw) {
    const names: string[] = [];
    for await (const item of raw.listBackend(`${root}/`, 'cleanup')) names.push(item.name);
    await raw.deleteBackend(names);
    await raw.close();
  }
  await registry?.close();
});

/** Every backend object name under the location's root, relative to it. */
async function backendNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const item of raw.listBackend(`${root}/`, 'test')) names.push(item.name.slice(root.length + 1));
  return names.sort();
}

async function segmentSet(key: string): Promise<string> {
  return (await raw.segmentSetOf(key, 'test'))!;
}

async function queuedSegments(uuid: string): Promise<ChunkCleanupPayload[]> {
  const { rows } = await registry.db.query<{ payload: ChunkCleanupPayload }>(
    `SELECT payload FROM outbox WHERE queue_name = 'chunk_cleanup' AND payload->>'uploadUuid' = $1`, [uuid]);
  return rows.map((r) => r.payload);
}

async function digestOfKey(key: string): Promise<string> {
  return (await readAll(await store.get(key))).digest;
}

/** A multipart write to `uploads/<uuid>` with two parts (6 MiB and 100 bytes), not completed. */
async function openMultipart(uuid: string): Promise<string> {
  const writer = await store.createMultipart(uploadKey(uuid));
  await writer.writePart(1, randomBytes(6 * MiB), 6 * MiB);
  await writer.writePart(2, randomBytes(100), 100);
  return writer.uploadId;
}

describe('uploads on Swift', () => {
  it('pushes a chunked blob as a large object at its content address and leaves nothing of a cancelled session', async () => {
    const bytes = randomBytes(12 * MiB + 100);
    const digest = await client.uploadBlob(repo, bytes, 'chunks', 6 * MiB);
    const cancelled = await client.startUpload(repo);
    const cancelledUuid = cancelled.split('/').pop()!;
    for (const [offset, size] of [[0, 6 * MiB], [6 * MiB, 6 * MiB]] as const) {
      expectStatus(await client.request('PATCH', cancelled, {
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + size - 1}` }, payload: randomBytes(size),
      }), 202);
    }
    expectStatus(await client.request('DELETE', cancelled), 204);

    const blob = `${blobKey(digest)}`;
    const set = await segmentSet(blob);
    expect(set).toMatch(/^[0-9a-f]{32}$/);
    // The blob's manifest and its three segments (6 MiB, 6 MiB, 100 bytes); no upload, staged object or marker.
    expect(await backendNames()).toEqual([`.quayfleet/segments/${set}/00001`, `.quayfleet/segments/${set}/00002`, `.quayfleet/segments/${set}/00003`, blob].sort());
    const pulled = await client.request('GET', `/v2/${repo}/blobs/${digest}`);
    expect(pulled.statusCode).toBe(200);
    expect(sha256(pulled.rawPayload)).toBe(digest);

    // The jobs the cancel queued find nothing left to do, and touch nothing.
    const before = await backendNames();
    for (const payload of await queuedSegments(cancelledUuid)) {
      expect(await cleanSegments(registry.db, store, payload)).toMatchObject({ objects: 0, aborted: 0 });
    }
    expect(await backendNames()).toEqual(before);
  });

  it('removes the segments a crash left of a finished and of an abandoned upload, and nothing else', async () => {
    // A blob that was pushed before: a large object with its own segments.
    const blobBytes = randomBytes(11 * MiB);
    const blob = blobKey(`sha256:${createHash('sha256').update(blobBytes).digest('hex')}`);
    await store.put(blob, blobBytes, { contentLength: blobBytes.length });

    // Finished: completed to uploads/<uuid> and copied to its content address, then the process
    // died before deleting the upload object; its superseded staged object (large too) is left.
    const finished = randomUUID();
    const finishedWriter = await store.resumeMultipart(uploadKey(finished), await openMultipart(finished));
    await finishedWriter.complete();
    const finishedBlob = blobKey(`sha256:${createHash('sha256').update(randomUUID()).digest('hex')}`);
    await store.copy(uploadKey(finished), finishedBlob);
    const finishedStaged = `${uploadKey(finished)}.staged-aaaaaaaaaaaa`;
    await store.put(finishedStaged, randomBytes(7 * MiB), {});

    // Abandoned: a multipart write in progress and a staged object.
    const abandoned = randomUUID();
    const abandonedUploadId = await openMultipart(abandoned);
    const abandonedStaged = `${uploadKey(abandoned)}.staged-bbbbbbbbbbbb`;
    await store.put(abandonedStaged, randomBytes(1000));

    // Live: a session still receiving chunks (its row references the write and the staged tail),
    // and another upload nobody queued.
    const live = randomUUID();
    const liveUploadId = await openMultipart(live);
    const liveStaged = `${uploadKey(live)}.staged-cccccccccccc`;
    await store.put(liveStaged, randomBytes(6 * MiB), {});
    const { rows: [location] } = await registry.db.query<{ id: number }>(`SELECT id FROM imagestoragelocation WHERE name = 'swift'`);
    const { rows: [repository] } = await registry.db.query<{ id: number }>(`SELECT id FROM repository LIMIT 1`);
    await registry.db.query(
      `INSERT INTO blobupload (repository_id, uuid, byte_count, location_id, storage_metadata, chunk_count, created, updated) VALUES ($1, $2, $3, $4, $5, 3, now(), now())`,
      [repository!.id, live, 6 * MiB + 100 + 6 * MiB, location!.id, JSON.stringify({ uploadId: liveUploadId, parts: 2, tail: { key: liveStaged, bytes: 6 * MiB } })]);
    const bystander = randomUUID();
    await openMultipart(bystander);

    // What the two jobs may remove: the uploads' objects, and the segments and markers of their sets.
    const removedSets = [await segmentSet(uploadKey(finished)), await segmentSet(finishedStaged), abandonedUploadId];
    const removedKeys = [uploadKey(finished), finishedStaged, abandonedStaged];
    const removable = (name: string): boolean => removedKeys.includes(name)
      || removedSets.some((id) => name.startsWith(`.quayfleet/segments/${id}/`) || name === `.quayfleet/multipart/${id}`);
    const before = await backendNames();
    expect(before.filter(removable).length).toBe(3 + 2 + 2 + 2 + 1); // 3 keys, 2 + 2 segments, 2 + 1 marker
    const sets = { blob: await segmentSet(blob), copy: await segmentSet(finishedBlob) };
    const blobDigests = { blob: await digestOfKey(blob), copy: await digestOfKey(finishedBlob) };

    const finishedRun = await cleanSegments(registry.db, store, { v: 1, location: 'swift', uploadUuid: finished, paths: [uploadKey(finished), finishedStaged] });
    expect(finishedRun).toMatchObject({ objects: 2, aborted: 0, kept: 0 });
    const abandonedRun = await cleanSegments(registry.db, store, { v: 1, location: 'swift', uploadUuid: abandoned, paths: [uploadKey(abandoned), abandonedStaged] });
    expect(abandonedRun).toMatchObject({ objects: 1, aborted: 1, kept: 0 });
    const liveRun = await cleanSegments(registry.db, store, { v: 1, location: 'swift', uploadUuid: live, paths: [uploadKey(live), liveStaged] });
    expect(liveRun).toMatchObject({ objects: 0, aborted: 0, kept: 2 });

    // Exactly those are gone: the blobs keep their segment sets and bytes, the live session and the
    // bystander keep their writes.
    expect(await backendNames()).toEqual(before.filter((name) => !removable(name)));
    expect(await segmentSet(blob)).toBe(sets.blob);
    expect(await segmentSet(finishedBlob)).toBe(sets.copy);
    expect({ blob: await digestOfKey(blob), copy: await digestOfKey(finishedBlob) }).toEqual(blobDigests);
    const uploads = new Set<string>();
    for await (const u of store.listMultipartUploads('uploads/')) uploads.add(u.key);
    expect(uploads).toEqual(new Set([uploadKey(live), uploadKey(bystander)]));
  });
});
