/**
 * The peer the storage benchmark compares against: the same small-object workload done with each
 * backend's SDK (or `fs`) directly, without the storage layer (no key validation, no metrics, no
 * error mapping, no durability work such as LocalStorage's fsync and rename). The ratio of the two
 * rates is what the layer costs per object.
 */
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import { mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createReadStream } from 'node:fs';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { Storage } from '@google-cloud/storage';
import { mapBounded } from '../../shared/storage/concurrency.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';
import { AZURITE, GCS_EMULATOR, RADOSGW, RADOSGW_SWIFT } from '../../test/servers/storage-endpoints.ts';
import { BENCH_AZURITE_CONTAINER, BENCH_AZURITE_ENDPOINT } from './azurite.ts';

/** The three calls the workloads use, done straight on an SDK. */
export type RawStore = Pick<ObjectStore, 'put' | 'get' | 'deleteMany' | 'close'>;

const stat = (key: string, size: number): { key: string; size: number; lastModified: Date } => ({ key, size, lastModified: new Date() });
const deleteAll = async (keys: readonly string[], remove: (key: string) => Promise<unknown>): Promise<{ deleted: string[]; failed: [] }> => {
  await mapBounded(keys, 16, remove);
  return { deleted: [...keys], failed: [] };
};

/** Raw clients against the same servers as the benchmark's stores, under `prefix`. */
export const RAW_TARGETS: Record<string, (localRoot: string) => RawStore> = {
  local: (root) => ({
    put: async (key, body, options) => {
      const file = path.join(root, 'raw', key);
      await mkdir(path.dirname(file), { recursive: true });
      await pipeline(body as Readable, createWriteStream(file));
      return stat(key, options?.contentLength ?? 0);
    },
    get: async (key) => createReadStream(path.join(root, 'raw', key)),
    deleteMany: (keys) => deleteAll(keys, (key) => unlink(path.join(root, 'raw', key))),
    close: async () => undefined,
  }),
  radosgw: () => {
    const s3 = new S3Client({
      endpoint: RADOSGW.endpoint, region: 'us-east-1', forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
      credentials: { accessKeyId: RADOSGW.accessKey, secretAccessKey: RADOSGW.secretKey },
    });
    const Key = (key: string): string => `raw/${key}`;
    return {
      put: async (key, body, options) => {
        await s3.send(new PutObjectCommand({ Bucket: RADOSGW.bucket, Key: Key(key), Body: body, ContentLength: options?.contentLength }));
        return stat(key, options?.contentLength ?? 0);
      },
      get: async (key) => (await s3.send(new GetObjectCommand({ Bucket: RADOSGW.bucket, Key: Key(key) }))).Body as Readable,
      deleteMany: (keys) => deleteAll(keys, (key) => s3.send(new DeleteObjectCommand({ Bucket: RADOSGW.bucket, Key: Key(key) }))),
      close: async () => s3.destroy(),
    };
  },
  azurite: () => {
    const container = new BlobServiceClient(BENCH_AZURITE_ENDPOINT, new StorageSharedKeyCredential(AZURITE.accountName, AZURITE.accountKey))
      .getContainerClient(BENCH_AZURITE_CONTAINER);
    const blob = (key: string): ReturnType<typeof container.getBlockBlobClient> => container.getBlockBlobClient(`raw/${key}`);
    return {
      put: async (key, body, options) => {
        await blob(key).upload(body, options?.contentLength ?? 0);
        return stat(key, options?.contentLength ?? 0);
      },
      get: async (key) => (await blob(key).download()).readableStreamBody as Readable,
      deleteMany: (keys) => deleteAll(keys, (key) => blob(key).deleteIfExists()),
      close: async () => undefined,
    };
  },
  gcs: () => {
    const bucket = new Storage({ apiEndpoint: GCS_EMULATOR.endpoint, projectId: GCS_EMULATOR.projectId }).bucket(GCS_EMULATOR.bucket);
    const file = (key: string): ReturnType<typeof bucket.file> => bucket.file(`raw/${key}`);
    return {
      put: async (key, body, options) => {
        await pipeline(body as Readable, file(key).createWriteStream({ resumable: false }));
        return stat(key, options?.contentLength ?? 0);
      },
      get: async (key) => file(key).createReadStream(),
      deleteMany: (keys) => deleteAll(keys, (key) => file(key).delete({ ignoreNotFound: true })),
      close: async () => undefined,
    };
  },
  swift: () => {
    // No Swift SDK exists to compare with: the peer is plain keep-alive HTTP with one v1 token.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const session = fetch(RADOSGW_SWIFT.authUrl, { headers: { 'X-Auth-User': RADOSGW_SWIFT.user, 'X-Auth-Key': RADOSGW_SWIFT.key } })
      .then((r) => ({ token: r.headers.get('x-auth-token')!, url: `${r.headers.get('x-storage-url')}/${RADOSGW_SWIFT.container}/raw/` }));
    const send = async (method: string, key: string, body?: Readable, length?: number): Promise<http.IncomingMessage> => {
      const { token, url } = await session;
      return new Promise((resolve, reject) => {
        const headers: Record<string, string> = { 'x-auth-token': token, ...(length === undefined ? {} : { 'content-length': String(length) }) };
        const request = http.request(`${url}${key.split('/').map(encodeURIComponent).join('/')}`, { method, agent, headers }, (response) => {
          if ((response.statusCode ?? 0) >= 300 && response.statusCode !== 404) reject(new Error(`${method} ${key}: HTTP ${response.statusCode}`));
          else resolve(response);
        });
        request.on('error', reject);
        if (body) body.pipe(request);
        else request.end();
      });
    };
    return {
      put: async (key, body, options) => {
        (await send('PUT', key, body as Readable, options?.contentLength)).resume();
        return stat(key, options?.contentLength ?? 0);
      },
      get: (key) => send('GET', key),
      deleteMany: (keys) => deleteAll(keys, async (key) => (await send('DELETE', key)).resume()),
      close: async () => agent.destroy(),
    };
  },
};
