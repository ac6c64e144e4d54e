/**
 * The abandoned-session cleanup SIGKILLed mid-batch (a real child process, killed after its third
 * batch removed stored bytes and before that batch committed), on every backend: the batches it
 * committed are gone with their bytes, every other session keeps its row (some without their
 * bytes), and a rerun completes, leaving nothing under `uploads/` and storage matching the database.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { auditStorage } from '../../shared/db/gc/audit.ts';
import { uploadKey } from '../../shared/storage/keys.ts';
import { cancelAbandonedSessions } from '../../workers/chunkcleanupworker/sessions.ts';
import { count, createGcFixture, namespace, repository, type GcFixture } from '../gc/fixtures.ts';
import { UPLOAD_BACKENDS } from './backends.ts';

const SESSIONS = 40;
const BATCH = 5;

describe.each(UPLOAD_BACKENDS)('abandoned-session cleanup on %s interrupted by SIGKILL', (_label, driver) => {
  let f: GcFixture;
  beforeAll(async () => {
    const params = driver();
    f = await createGcFixture('uploadkill', ['loc'], params ? { loc: params } : {});
  });
  afterAll(async () => {
    // Whatever a failed assertion left behind goes, so the shared servers stay clean.
    const store = f?.storage.preferredStore();
    if (store) {
      for await (const u of store.listMultipartUploads('')) await store.abortMultipartUpload(u);
      for await (const o of store.list('')) await store.delete(o.key);
    }
    await f?.close();
  });

  async function abandonedSessions(): Promise<void> {
    const repositoryId = await repository(f, await namespace(f, 'killed'), 'app');
    const store = f.storage.preferredStore();
    for (let i = 0; i < SESSIONS; i++) {
      const uuid = randomUUID();
      const writer = await store.createMultipart(uploadKey(uuid));
      await writer.writePart(1, randomBytes(2000), 2000);
      const staged = `${uploadKey(uuid)}.staged-${randomBytes(6).toString('hex')}`;
      await store.put(staged, randomBytes(500));
      await f.pool.query(
        `INSERT INTO blobupload (repository_id, uuid, byte_count, location_id, storage_metadata, created, updated) VALUES ($1, $2, 2500, $3, $4, $5, $5)`,
        [repositoryId, uuid, f.locationIds.get('loc'), JSON.stringify({ uploadId: writer.uploadId, parts: 1, tail: { key: staged, bytes: 500 } }), new Date(Date.now() - 3 * 86_400_000)]);
    }
  }

  async function storedUploads(): Promise<{ objects: number; multipart: number }> {
    const store = f.storage.preferredStore();
    let objects = 0;
    let multipart = 0;
    for await (const _ of store.list('uploads/')) objects += 1;
    for await (const _ of store.listMultipartUploads('uploads/')) multipart += 1;
    return { objects, multipart };
  }

  it('keeps what it committed, and a rerun completes', { timeout: 180_000 }, async () => {
    await abandonedSessions();
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/uploads/cleanup-child.ts', f.database.url, JSON.stringify(f.storageConfig), String(BATCH)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let committed = 0;
    let finished = false;
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      for (const line of text.split('\n')) {
        const match = /^batch (\d+)/.exec(line);
        if (match) committed += Number(match[1]);
        if (line.startsWith('done')) finished = true;
      }
    });
    const exited = new Promise<void>((resolve, reject) => {
      child.on('exit', () => resolve());
      child.on('error', reject);
    });
    await waitFor(() => committed >= 2 * BATCH || finished, 90_000);
    // The third batch has removed bytes of sessions whose rows wait for its COMMIT: kill it there.
    await waitFor(async () => (await storedUploads()).objects < await count(f, 'blobupload'), 30_000);
    child.kill('SIGKILL');
    await exited;
    expect(finished).toBe(false);
    const left = await count(f, 'blobupload');
    expect(left).toBe(SESSIONS - 2 * BATCH);
    // Every session left still has its row; some of those rows' bytes went with the killed batch.
    const stored = await storedUploads();
    expect(stored.objects).toBeLessThan(left);
    expect(stored.multipart).toBeLessThanOrEqual(left);

    const rerun = await cancelAbandonedSessions(f.pool, f.storage, { nowMs: Date.now(), thresholdMs: 2 * 86_400_000, batchSize: BATCH });
    expect(rerun).toMatchObject({ sessions: left, failed: 0 });
    expect(await count(f, 'blobupload')).toBe(0);
    expect(await storedUploads()).toEqual({ objects: 0, multipart: 0 });
    expect(await auditStorage(f.pool, f.storage, f.storage.locations)).toMatchObject({ ok: true });
  });
});
