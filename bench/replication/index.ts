/**
 * Replication benchmark: N blobs (default 300 x 100 KiB, about 30 MiB; BENCH_SCALE multiplies N)
 * replicated from RadosGW to a private Azurite (a streamed copy: different providers) by the
 * storagereplicationworker on real BullMQ and Postgres, against the peer measured in the same run:
 * a plain streamed copy with the same SDKs (S3 GetObject piped into Azure Put Blob) at the same
 * concurrency, with no queue, no database and no verification. Then the same N blobs between two
 * RadosGW buckets (server-side CopyObject) by the worker, against bare CopyObject calls.
 * The worker's figures include what the peer skips: the blob's rows read, its bytes hashed and
 * written with Content-MD5 (streamed), the CopyObject's answered ETag checked against the source
 * placement's recorded one (server-side; BENCH_SOURCE_ETAG=0: a HEAD of the source beside each
 * CopyObject instead), the placements written under the digest locks, and the queue. Prints lines, then one JSON
 * object last, with the load average (the machine is shared).
 *
 *   npm run bench -- replication
 *
 * The workload is 10k blobs / 1 GiB; on the shared 2-core machine that takes several
 * minutes per side, so the default is 3 % of it (BENCH_BLOBS=10000 runs the full size).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { CopyObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { pino } from 'pino';
import { imagestoragereplication } from '../../queues/imagestoragereplication.ts';
import { parseConfig } from '../../shared/config/index.ts';
import { ensureLocations } from '../../shared/db/blobs.ts';
import { mapBounded } from '../../shared/storage/concurrency.ts';
import { createProducer } from '../../shared/runtime/producer.ts';
import { runWorker } from '../../shared/runtime/run-worker.ts';
import { blobKey, createDistributedStorage, createObjectStore } from '../../shared/storage/index.ts';
import { createTestDatabase } from '../../test/helpers/db.ts';
import { REDIS_URL, uniquePrefix } from '../../test/helpers/redis.ts';
import { preparePostgresTemplate } from '../../test/servers/postgres-redis.ts';
import { AZURITE, RADOSGW } from '../../test/servers/storage-endpoints.ts';
import { startStorageServers } from '../../test/servers/storage.ts';
import { ensureRadosgwBucket, SECOND_BUCKET } from '../../test/georep/fixture.ts';
import { BENCH_AZURITE_CONTAINER, BENCH_AZURITE_ENDPOINT, startBenchAzurite } from '../storage/azurite.ts';
import { rssSampler } from '../storage/workloads.ts';
import { storagereplicationworker } from '../../workers/storagereplicationworker/index.ts';
import { loadLine, printResult } from '../report.ts';

console.log(loadLine('before'));

const scale = Number(process.env.BENCH_SCALE ?? 1);
/** BENCH_BLOBS sets the count outright (BENCH_BLOBS=10000 is the 10k blobs, 1 GiB). */
const COUNT = Math.max(1, Number(process.env.BENCH_BLOBS ?? 0) || Math.round(300 * scale));
const SIZE = 100 * 1024;
/** The worker's concurrency (16 jobs, one destination each here); the peer gets the same. */
const CONCURRENCY = storagereplicationworker.concurrency;
const tag = randomBytes(4).toString('hex');

await preparePostgresTemplate();
const stopServers = await startStorageServers();
const workDir = mkdtempSync(path.join(os.tmpdir(), 'quayfleet-bench-georep-'));
// Azurite slows down with every blob it holds (bench/storage/azurite.ts): each side of the streamed
// comparison writes to a fresh one, or the peer, running second, would pay for the worker's blobs.
let stopAzurite = await startBenchAzurite(workDir);
await ensureRadosgwBucket(SECOND_BUCKET);

const rgw = (bucket: string, prefix: string) => ['RadosGWStorage', {
  hostname: RADOSGW.host, port: RADOSGW.port, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey, bucket_name: bucket, storage_path: prefix,
}];
const azure = (prefix: string) => ['AzureStorage', {
  azure_container: BENCH_AZURITE_CONTAINER, azure_account_name: AZURITE.accountName, azure_account_key: AZURITE.accountKey,
  endpoint_url: BENCH_AZURITE_ENDPOINT, storage_path: prefix,
}];

interface Figures { seconds: number; blobsPerSecond: number; mbPerSecond: number }
const figures = (seconds: number): Figures => ({
  seconds: round(seconds), blobsPerSecond: round(COUNT / seconds), mbPerSecond: round((COUNT * SIZE) / seconds / 1e6),
});
function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Replicates COUNT fresh blobs from `src` to `dst` with the worker; returns its figures and peak RSS. */
async function workerRun(label: string, src: unknown[], dst: unknown[]): Promise<{ figures: Figures; peakRssMiB: number; digests: string[] }> {
  const database = await createTestDatabase(`benchgeorep${label}`);
  const config = parseConfig({
    FEATURE_STORAGE_REPLICATION: true, DISTRIBUTED_STORAGE_CONFIG: { src, dst },
    DISTRIBUTED_STORAGE_PREFERENCE: ['src'], DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: ['src', 'dst'],
  });
  const storage = await createDistributedStorage(config.quay);
  const ids = await ensureLocations(database.pool, ['src', 'dst']);
  const digests: string[] = [];
  const { rows: [ns] } = await database.pool.query<{ id: number }>(`INSERT INTO namespace (username) VALUES ('bench') RETURNING id`);
  // Setup (not timed): the blobs at the source, and their rows.
  const etags: (string | null)[] = [];
  await mapBounded(Array.from({ length: COUNT }, (_, i) => i), 16, async () => {
    const bytes = randomBytes(SIZE);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const stored = await storage.store('src').put(blobKey(digest), bytes);
    digests.push(digest);
    etags.push(SOURCE_ETAG ? stored.etag ?? null : null);
  });
  const { rows } = await database.pool.query<{ id: number; digest: string }>(
    `INSERT INTO imagestorage (content_checksum, image_size) SELECT unnest($1::text[]), $2 RETURNING id, content_checksum AS digest`, [digests, SIZE]);
  const etagOf = new Map(digests.map((digest, i) => [digest, etags[i]]));
  await database.pool.query(`INSERT INTO imagestorageplacement (storage_id, location_id, etag) SELECT unnest($1::bigint[]), $2, unnest($3::text[])`,
    [rows.map((r) => r.id), ids.get('src'), rows.map((r) => etagOf.get(r.digest))]);
  const prefix = uniquePrefix('benchgeorep');
  const producer = createProducer({ url: REDIS_URL, prefix });
  const log = pino({ level: 'warn' });
  // The jobs are queued before the clock starts, as pushes queue them; the clock includes the
  // worker's start-up.
  await mapBounded(rows, 16, (row) => producer.enqueue(imagestoragereplication, { v: 1, storageId: row.id, namespaceId: ns!.id, digest: row.digest }));
  const rss = rssSampler();
  const started = performance.now();
  // Without the reconciler's schedule: a sweep runs only when one is enqueued (sweep.test.ts).
  const worker = await runWorker({ ...storagereplicationworker, schedule: undefined }, { config, services: { db: database.pool, storage, config }, redis: { url: REDIS_URL, prefix }, log });
  for (;;) {
    const { rows: [done] } = await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM imagestorageplacement WHERE location_id = $1`, [ids.get('dst')]);
    if (done!.n >= COUNT) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const seconds = (performance.now() - started) / 1000;
  const peakRssMiB = rss.stop();
  if (!worker.disabled) await worker.stop(5000);
  await producer.queue(imagestoragereplication.name).obliterate({ force: true });
  await producer.close();
  await storage.close();
  await database.drop();
  return { figures: figures(seconds), peakRssMiB, digests };
}

const s3 = new S3Client({
  endpoint: RADOSGW.endpoint, region: 'us-east-1', forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  credentials: { accessKeyId: RADOSGW.accessKey, secretAccessKey: RADOSGW.secretKey },
});
const container = new BlobServiceClient(BENCH_AZURITE_ENDPOINT, new StorageSharedKeyCredential(AZURITE.accountName, AZURITE.accountKey))
  .getContainerClient(BENCH_AZURITE_CONTAINER);

/** The peer: the same copies with the bare SDKs (same keys, so the same sources). */
async function peerRun(copy: (key: string) => Promise<void>, digests: string[]): Promise<Figures> {
  const started = performance.now();
  await mapBounded(digests, CONCURRENCY, (digest) => copy(blobKey(digest)));
  return figures((performance.now() - started) / 1000);
}

/**
 * Whether the source placements carry the ETag of their object, as a push to S3 records it (the
 * ETag its move answered) and every placement the worker records does: a server-side copy from it
 * is then one conditional CopyObject. BENCH_SOURCE_ETAG=0 measures sources without one (placements
 * recorded before the column existed, or by a mirror: a HEAD beside each copy, two requests).
 */
const SOURCE_ETAG = process.env.BENCH_SOURCE_ETAG !== '0';
/** BENCH_PART=stream or server-side runs only that half (both by default). */
const part = process.env.BENCH_PART ?? 'both';
if (!['both', 'stream', 'server-side'].includes(part)) throw new Error(`BENCH_PART must be stream, server-side or both, not ${part}`);

async function streamHalf(): Promise<Record<string, unknown>> {
  const streamPrefix = `bench-georep-${tag}`;
  const stream = await workerRun('stream', rgw(RADOSGW.bucket, `${streamPrefix}/src`), azure(`${streamPrefix}/dst`));
  console.log(`worker, RadosGW -> Azurite (stream): ${COUNT} blobs in ${stream.figures.seconds} s, ${stream.figures.blobsPerSecond} blobs/s, ${stream.figures.mbPerSecond} MB/s, peak RSS ${stream.peakRssMiB} MiB`);
  await stopAzurite();
  stopAzurite = await startBenchAzurite(workDir);
  const streamPeer = await peerRun(async (key) => {
    const object = await s3.send(new GetObjectCommand({ Bucket: RADOSGW.bucket, Key: `${streamPrefix}/src/${key}` }));
    await container.getBlockBlobClient(`${streamPrefix}/peer/${key}`).upload(() => object.Body as Readable, SIZE);
  }, stream.digests);
  console.log(`peer, S3 GetObject piped into Azure Put Blob: ${streamPeer.seconds} s, ${streamPeer.blobsPerSecond} blobs/s, ${streamPeer.mbPerSecond} MB/s`);
  return { worker: stream.figures, peer: streamPeer, ratio: round(stream.figures.blobsPerSecond / streamPeer.blobsPerSecond), peakRssMiB: stream.peakRssMiB };
}

async function serverSideHalf(): Promise<Record<string, unknown>> {

  const copyPrefix = `bench-georep-${tag}-ss`;
  const serverSide = await workerRun('serverside', rgw(RADOSGW.bucket, `${copyPrefix}/src`), rgw(SECOND_BUCKET, `${copyPrefix}/dst`));
  console.log(`worker, RadosGW bucket -> bucket (server-side): ${serverSide.figures.seconds} s, ${serverSide.figures.blobsPerSecond} blobs/s, peak RSS ${serverSide.peakRssMiB} MiB`);
  const serverSidePeer = await peerRun(async (key) => {
    await s3.send(new CopyObjectCommand({ Bucket: SECOND_BUCKET, Key: `${copyPrefix}/peer/${key}`, CopySource: `${RADOSGW.bucket}/${copyPrefix}/src/${key}` }));
  }, serverSide.digests);
  console.log(`peer, bare CopyObject: ${serverSidePeer.seconds} s, ${serverSidePeer.blobsPerSecond} blobs/s`);
  return { worker: serverSide.figures, peer: serverSidePeer, ratio: round(serverSide.figures.blobsPerSecond / serverSidePeer.blobsPerSecond), peakRssMiB: serverSide.peakRssMiB };
}

try {
  const result = {
    bench: 'replication', blobs: COUNT, blobBytes: SIZE, concurrency: CONCURRENCY, sourceEtagRecorded: SOURCE_ETAG,
    ...(part === 'server-side' ? {} : { stream: await streamHalf() }),
    ...(part === 'stream' ? {} : { serverSide: await serverSideHalf() }),
  };
  printResult(result);
} finally {
  // The RadosGW objects of this run (the memstore is shared with the tests).
  for (const [bucket, prefix] of [[RADOSGW.bucket, `bench-georep-${tag}`], [SECOND_BUCKET, `bench-georep-${tag}-ss`]] as const) {
    const store = createObjectStore('RadosGWStorage', { hostname: RADOSGW.host, port: RADOSGW.port, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey, bucket_name: bucket });
    const keys: string[] = [];
    for await (const object of store.list(prefix)) keys.push(object.key);
    await store.deleteMany(keys);
    await store.close();
  }
  s3.destroy();
  await stopAzurite();
  await stopServers();
  rmSync(workDir, { recursive: true, force: true });
}
