import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UploadStorageState } from '../../../shared/db/uploads.ts';
import { createObjectStore, loadStorageDrivers } from '../../../shared/storage/drivers/index.ts';
import type { MultipartWriter, ObjectStore } from '../../../shared/storage/types.ts';
import { RADOSGW } from '../../../test/servers/storage-endpoints.ts';
import { BodyReader } from './body-reader.ts';
import { appendToUpload } from './writer.ts';

// The cloud drivers load on demand (drivers/index.ts); this file uses them directly.
await loadStorageDrivers();

/** A request of a session: its chunks, whether it declares its length, whether it completes the upload. */
interface Step { chunks: Buffer[]; known: boolean; final: boolean }

interface PartLog { uploads: Map<string, number[]> }

// Wraps a store so it enforces `minPartBytes` like S3 does and records the size of every part.
function strictStore(inner: ObjectStore, minPartBytes: number, log: PartLog): ObjectStore {
  const wrap = (writer: MultipartWriter): MultipartWriter => ({
    key: writer.key,
    uploadId: writer.uploadId,
    async writePart(n, body, size) {
      let counted = 0;
      const counting = Readable.from((async function* count() {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          counted += chunk.length;
          yield chunk;
        }
        if (counted !== size) throw new Error(`part ${n} declared ${size} bytes but streamed ${counted}`);
      })());
      await writer.writePart(n, counting, size);
      const sizes = log.uploads.get(writer.uploadId) ?? [];
      sizes[n - 1] = size;
      log.uploads.set(writer.uploadId, sizes);
    },
    async complete() {
      const sizes = log.uploads.get(writer.uploadId) ?? [];
      sizes.slice(0, -1).forEach((size, i) => {
        if (size < minPartBytes) throw new Error(`part ${i + 1} has ${size} bytes, below the minimum ${minPartBytes}`);
      });
      return writer.complete();
    },
    abort: () => writer.abort(),
  });
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'minPartBytes') return minPartBytes;
      if (prop === 'createMultipart') return async (key: string) => wrap(await target.createMultipart(key));
      if (prop === 'resumeMultipart') return async (key: string, id: string) => wrap(await target.resumeMultipart(key, id));
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function runSession(store: ObjectStore, steps: Step[], partBytes: number): Promise<{ object: Buffer; state: UploadStorageState }> {
  const uuid = randomUUID();
  let state: UploadStorageState = { parts: 0 };
  for (const step of steps) {
    const length = step.chunks.reduce((sum, c) => sum + c.length, 0);
    const reader = new BodyReader(Readable.from(step.chunks.length ? step.chunks : []), () => undefined);
    const outcome = await appendToUpload({ store, uuid, state, reader, length: step.known ? length : undefined, final: step.final, partBytes });
    expect(reader.received).toBe(length);
    if (outcome.obsolete.length) await store.deleteMany(outcome.obsolete);
    state = outcome.state;
    if (step.final) {
      const chunks: Buffer[] = [];
      for await (const chunk of await store.get(outcome.objectKey!)) chunks.push(chunk as Buffer);
      await store.delete(outcome.objectKey!);
      return { object: Buffer.concat(chunks), state };
    }
  }
  throw new Error('no final step');
}

function randomSteps(seed: number, min: number): Step[] {
  let x = seed;
  const rand = (n: number): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % n;
  };
  const steps: Step[] = [];
  const count = 1 + rand(6);
  for (let i = 0; i < count; i++) {
    const chunks = Array.from({ length: rand(3) + 1 }, () => randomBytes(rand(3) === 0 ? rand(3 * min) : rand(min)));
    steps.push({ chunks, known: rand(2) === 0, final: i === count - 1 });
  }
  return steps;
}

function expected(steps: Step[]): Buffer {
  return Buffer.concat(steps.flatMap((s) => s.chunks));
}

describe('upload part mapping on LocalStorage with a 1000-byte part minimum', () => {
  let dir: string;
  let store: ObjectStore;
  const log: PartLog = { uploads: new Map() };
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'quayfleet-writer-'));
    store = strictStore(createObjectStore('LocalStorage', { storage_path: dir }), 1000, log);
  });
  afterAll(async () => fs.rm(dir, { recursive: true, force: true }));

  it('writes a one-PATCH upload once, as one staged object, without a multipart write', async () => {
    const body = randomBytes(5000);
    for (const known of [true, false]) {
      const before = log.uploads.size;
      const { object } = await runSession(store, [{ chunks: [body], known, final: false }, { chunks: [], known: true, final: true }], 1500);
      expect(object.equals(body)).toBe(true);
      expect(log.uploads.size).toBe(before);
    }
  });

  it('assembles an empty upload and a monolithic one', async () => {
    expect((await runSession(store, [{ chunks: [], known: true, final: true }], 1500)).object.length).toBe(0);
    const body = randomBytes(2345);
    expect((await runSession(store, [{ chunks: [body], known: false, final: true }], 1500)).object.equals(body)).toBe(true);
  });

  it('carries chunks smaller than a part in the staged object until a part can take them', async () => {
    const steps: Step[] = [10, 20, 300, 999, 1, 5].map((n) => ({ chunks: [randomBytes(n)], known: true, final: false }));
    steps.push({ chunks: [randomBytes(7)], known: true, final: true });
    const { object } = await runSession(store, steps, 1500);
    expect(object.equals(expected(steps))).toBe(true);
  });

  it.each(Array.from({ length: 40 }, (_, i) => i + 1))('keeps every part but the last at the minimum for random chunks (seed %i)', async (seed) => {
    const steps = randomSteps(seed, 1000);
    const { object } = await runSession(store, steps, 1500);
    expect(object.equals(expected(steps))).toBe(true);
  });

  it('fails with SIZE_INVALID when a body of declared length ends early, and writes nothing for it', async () => {
    const uuid = randomUUID();
    const reader = new BodyReader(Readable.from([randomBytes(100)]), () => undefined);
    await expect(appendToUpload({ store, uuid, state: { parts: 0 }, reader, length: 500, final: false, partBytes: 1500 })).rejects.toBeDefined();
    expect(reader.failure?.message).toMatch(/shorter than its declared length/);
  });
});

describe('upload part mapping on Ceph RadosGW (S3 multipart, 5 MiB minimum)', () => {
  const store = createObjectStore('RadosGWStorage', {
    hostname: RADOSGW.host, port: String(RADOSGW.port), is_secure: false, access_key: RADOSGW.accessKey,
    secret_key: RADOSGW.secretKey, bucket_name: RADOSGW.bucket, storage_path: '/registry-writer-test',
  });
  afterAll(async () => store.close());
  const MiB = 1024 * 1024;

  it('assembles chunks of arbitrary sizes, known and unknown, into a valid multipart object', async () => {
    const steps: Step[] = [
      { chunks: [randomBytes(3 * MiB)], known: true, final: false },
      { chunks: [randomBytes(100)], known: true, final: false },
      { chunks: [randomBytes(2 * MiB), randomBytes(5 * MiB)], known: false, final: false },
      { chunks: [randomBytes(6 * MiB)], known: true, final: false },
      { chunks: [randomBytes(1234)], known: false, final: true },
    ];
    const { object } = await runSession(store, steps, 8 * MiB);
    expect(object.equals(expected(steps))).toBe(true);
  }, 60_000);
});
