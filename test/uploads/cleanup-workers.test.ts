/**
 * The upload-cleanup workers on real BullMQ beside a real front end (LocalStorage): with a 3 s
 * threshold and a sweep every second, an idle session is cancelled while a session kept receiving
 * chunks (and then a streamed request) for four thresholds survives and completes; a cancelled session's leftovers are
 * queued for `chunk_cleanup` 30 s out and deleted by that job, which touches nothing else.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { blobUploadCleanup } from '../../queues/blob-upload-cleanup.ts';
import { chunkCleanup, type ChunkCleanupPayload } from '../../queues/chunk-cleanup.ts';
import { garbagecollection } from '../../queues/garbagecollection.ts';
import type { VersionedPayload } from '../../queues/contract.ts';
import { registry as metrics } from '../../shared/metrics/index.ts';
import { createProducer, type Producer } from '../../shared/runtime/producer.ts';
import { runWorker, type RunningWorker } from '../../shared/runtime/run-worker.ts';
import { captureLogger, waitFor } from '../../shared/runtime/test-support/index.ts';
import type { WorkerDefinition, WorkerServices } from '../../shared/runtime/worker.ts';
import { uploadKey } from '../../shared/storage/keys.ts';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.ts';
import { V2Client, expectStatus, sha256 } from '../../registry/v2/test-support.ts';
import { blobuploadcleanupworker, chunkcleanupworker } from '../../workers/chunkcleanupworker/index.ts';
import { cleanSegments } from '../../workers/chunkcleanupworker/segments.ts';

let registry: TestRegistry;
let client: V2Client;
let producer: Producer;
let prefix: string;
let running: RunningWorker[] = [];
let workerLog: Record<string, unknown>[] = [];
const repo = 'alice/cleanup';
/** The wall clock of the front end and the sweep: real time, or frozen at `frozenMs` and moved by the test. */
const clock = { frozenMs: undefined as number | undefined, now: (): number => clock.frozenMs ?? Date.now() };

beforeAll(async () => {
  registry = await startTestRegistry({ label: 'uploadcleanup', now: clock.now, config: { BLOBUPLOAD_DELETION_DATE_THRESHOLD: 0.05, BLOBUPLOAD_CLEANUP_FREQUENCY: 1, PUSH_TEMP_TAG_EXPIRATION_SEC: 1 } });
  await registry.createUser('alice', 'password1');
  client = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', [`repository:${repo}:pull,push`]));
  prefix = uniquePrefix('uploadcleanup');
  producer = createProducer({ url: REDIS_URL, prefix });
});
afterEach(async () => {
  await Promise.all(running.map((w) => w.stop(2000)));
  running = [];
});
afterAll(async () => {
  for (const q of [chunkCleanup, blobUploadCleanup, garbagecollection]) await producer?.queue(q.name).obliterate({ force: true });
  await producer?.close();
  await registry?.close();
});

async function start<P extends VersionedPayload, S extends WorkerServices>(definition: WorkerDefinition<P, S>, extra: Record<string, unknown> = {}): Promise<void> {
  const { config } = registry.deps;
  const services = { db: registry.db, storage: registry.deps.storage, config, ...extra } as unknown as S;
  const { log, lines } = captureLogger();
  workerLog = lines;
  const worker = await runWorker(definition, { config, services, redis: { url: REDIS_URL, prefix }, log });
  if (worker.disabled) throw new Error('worker disabled');
  running.push(worker);
}

async function sessionFiles(uuid: string): Promise<string[]> {
  const entries = await fs.readdir(path.join(registry.storagePath, 'uploads')).catch(() => []);
  return entries.filter((name) => name.startsWith(uuid));
}

async function sessionExists(uuid: string): Promise<boolean> {
  const { rowCount } = await registry.db.query(`SELECT 1 FROM blobupload WHERE uuid = $1`, [uuid]);
  return rowCount === 1;
}

async function claimed(uuid: string): Promise<boolean> {
  const { rows } = await registry.db.query<{ claimed: boolean }>(`SELECT storage_metadata ? 'claim' AS claimed FROM blobupload WHERE uuid = $1`, [uuid]);
  return rows[0]?.claimed === true;
}

/** Moves the frozen clock by `ms`, then waits for a whole stale-uploads sweep judged at the new time. */
async function advanceAndSweep(ms: number): Promise<void> {
  clock.frozenMs! += ms;
  const judgedAt = new Date(clock.frozenMs!).toISOString();
  await waitFor(() => workerLog.some((line) => line.msg === 'upload cleanup done' && line.operation === 'stale_uploads' && line.judgedAt === judgedAt), 20_000);
}

async function multipartCounters(): Promise<{ started: number; completed: number; aborted: number }> {
  return {
    started: await metricValue('quay_multipart_uploads_started_total'),
    completed: await metricValue('quay_multipart_uploads_completed_total'),
    aborted: await metricValue('quay_multipart_uploads_aborted_total'),
  };
}

async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const values = (await metrics.getSingleMetric(name)!.get()).values;
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

describe('blobuploadcleanupworker', () => {
  // Inactivity is judged on the clock the front end and the sweep share, frozen here and moved only
  // by the test, and every step waits for a whole sweep: no stall of a loaded machine (the test, the
  // front end and the sweep share one event loop) can age a session the test keeps alive.
  it('cancels an idle session but never one still receiving chunks or a request, however long it has been open', { timeout: 90_000 }, async () => {
    clock.frozenMs = Date.now();
    try {
      const multipartBefore = await multipartCounters();
      const idle = await client.startUpload(repo);
      const idleUuid = idle.split('/').pop()!;
      // Two chunks: the first becomes a part of a multipart write, the second stays staged.
      for (let i = 0; i < 2; i += 1) expectStatus(await client.request('PATCH', idle, { payload: randomBytes(100) }), 202);
      const live = await client.startUpload(repo);
      const liveUuid = live.split('/').pop()!;
      const cancelledBefore = await metricValue('quayfleet_upload_sessions_cancelled_total');
      await start(blobuploadcleanupworker, { now: clock.now });

      // A chunk, then 2 s of silence (two thirds of the threshold) and a sweep, six times: the
      // session is four thresholds old, the idle one four thresholds idle.
      const chunks: Buffer[] = [];
      for (let step = 0; step < 6; step += 1) {
        const chunk = randomBytes(1000);
        chunks.push(chunk);
        expectStatus(await client.request('PATCH', live, { payload: chunk }), 202);
        await advanceAndSweep(2000);
        expect(await sessionExists(liveUuid)).toBe(true);
      }
      expect(await sessionExists(idleUuid)).toBe(false); // 12 s idle: gone at the second step's sweep
      expect(await sessionFiles(idleUuid)).toEqual([]);

      // A request streaming into the session holds it: its last chunk is now older than the threshold.
      const body = new PassThrough();
      const streamed = client.app.inject({ method: 'PATCH', url: live, headers: { authorization: `Bearer ${client.token}` }, payload: body });
      const first = randomBytes(700);
      body.write(first);
      await waitFor(() => claimed(liveUuid), 20_000);
      await advanceAndSweep(5000);
      expect(await sessionExists(liveUuid)).toBe(true);
      const second = randomBytes(300);
      body.end(second);
      expectStatus(await streamed, 202);
      chunks.push(first, second);

      const blob = Buffer.concat(chunks);
      expectStatus(await client.request('PUT', `${live}?digest=${sha256(blob)}`), 201);
      expect((await client.request('GET', `/v2/${repo}/blobs/${sha256(blob)}`)).rawPayload.equals(blob)).toBe(true);
      expect(await metricValue('quayfleet_upload_sessions_cancelled_total') - cancelledBefore).toBe(1);
      // Every multipart write started here ended (the live one completed, the idle one's aborted): none is in flight.
      const multipart = await multipartCounters();
      expect(multipart.completed - multipartBefore.completed).toBeGreaterThan(0);
      expect(multipart.aborted - multipartBefore.aborted).toBeGreaterThan(0);
      expect(multipart.started - multipartBefore.started).toBe((multipart.completed - multipartBefore.completed) + (multipart.aborted - multipartBefore.aborted));
      // The finished blob's lease (1 s here) expires; the next sweep hands its repository to GC.
      await advanceAndSweep(2000);
      const gcJobs = await producer.queue(garbagecollection.name).getJobs(['waiting', 'delayed', 'prioritized']);
      const gcJob = gcJobs.find((job) => (job.data as { reason: string }).reason === 'upload_lease');
      const { rows } = await registry.db.query<{ repository_id: number }>(`SELECT repository_id FROM uploadedblob`);
      expect((gcJob?.data as { repositoryId: number } | undefined)?.repositoryId).toBe(rows[0]!.repository_id);
    } finally {
      clock.frozenMs = undefined;
    }
  });
});

describe('chunkcleanupworker', () => {
  it('deletes a cancelled session\'s leftovers from the job its cancel queued 30 s out, and nothing else', async () => {
    const location = await client.startUpload(repo);
    const uuid = location.split('/').pop()!;
    expectStatus(await client.request('PATCH', location, { payload: randomBytes(300) }), 202);
    const before = Date.now();
    expectStatus(await client.request('DELETE', location), 204);
    const { rows } = await registry.db.query<{ payload: ChunkCleanupPayload; run_at: Date }>(
      `SELECT payload, run_at FROM outbox WHERE queue_name = 'chunk_cleanup' AND payload->>'uploadUuid' = $1`, [uuid]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.run_at.getTime() - before).toBeGreaterThanOrEqual(29_000);
    expect(rows[0]!.run_at.getTime() - before).toBeLessThan(32_000);
    const payload = rows[0]!.payload;
    expect(payload.paths[0]).toBe(uploadKey(uuid));
    // The front end's immediate delete failed (simulated by putting the bytes back): the job removes them.
    const store = registry.deps.storage.store(payload.location);
    for (const key of payload.paths) await store.put(key, randomBytes(50));
    const bystander = `${uploadKey('0b5e6f3a-1111-4222-8333-444455556666')}.staged-000000000000`;
    await store.put(bystander, randomBytes(10));
    await start(chunkcleanupworker);
    const jobId = await producer.enqueue(chunkCleanup, payload);
    await waitFor(async () => (await producer.queue(chunkCleanup.name).getJob(jobId))?.finishedOn, 10_000);
    expect(await producer.queue(chunkCleanup.name).getJob(jobId).then((j) => j?.getState())).toBe('completed');
    expect(await sessionFiles(uuid)).toEqual([]);
    expect(await store.exists(bystander)).toBe(true);
    // Idempotent: running the same segments again finds them gone and succeeds.
    expect(await cleanSegments(registry.db, store, payload)).toEqual({ objects: 0, bytes: 0, aborted: 0, kept: 0 });
  });

  it('dead-letters a job naming keys of another upload, and keeps what a live session references', async () => {
    await start(chunkcleanupworker);
    const live = await client.startUpload(repo);
    const uuid = live.split('/').pop()!;
    expectStatus(await client.request('PATCH', live, { payload: randomBytes(200) }), 202);
    const { rows } = await registry.db.query<{ tail: string }>(`SELECT storage_metadata->'tail'->>'key' AS tail FROM blobupload WHERE uuid = $1`, [uuid]);
    const store = registry.deps.storage.store(registry.deps.storage.preferredLocation);
    const obsolete = `${uploadKey(uuid)}.staged-ffffffffffff`;
    await store.put(obsolete, randomBytes(10));
    const kept = await producer.enqueue(chunkCleanup, { v: 1, location: registry.deps.storage.preferredLocation, uploadUuid: uuid, paths: [rows[0]!.tail, obsolete] });
    await waitFor(async () => (await producer.queue(chunkCleanup.name).getJob(kept))?.finishedOn, 10_000);
    expect(await store.exists(rows[0]!.tail)).toBe(true);
    expect(await store.exists(obsolete)).toBe(false);

    const other = '0b5e6f3a-2222-4222-8333-444455556666';
    const foreign = await producer.enqueue(chunkCleanup, { v: 1, location: registry.deps.storage.preferredLocation, uploadUuid: other, paths: [`${uploadKey(uuid)}.staged-ffffffffffff`, 'sha256/aa/aaaa'] });
    await waitFor(async () => (await producer.queue(chunkCleanup.name).getJob(foreign))?.finishedOn, 10_000);
    const job = await producer.queue(chunkCleanup.name).getJob(foreign);
    expect(await job!.getState()).toBe('failed');
    expect(job!.failedReason).toContain('names keys of no such upload');
    expectStatus(await client.request('DELETE', live), 204);
  });
});
