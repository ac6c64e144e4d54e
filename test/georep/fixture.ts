/**
 * The geo-replication test bed: one database, two front-end "pods" over it (pod A prefers the
 * first location, pod B overrides its preference with the second, as QUAY_DISTRIBUTED_STORAGE_PREFERENCE
 * does), the outbox relay, and the storagereplicationworker on real BullMQ, against real storage
 * servers (RadosGW, Azurite, the GCS emulator), each location under a fresh storage_path.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { FastifyInstance } from 'fastify';
import { buildRegistryApp } from '../../registry/app.ts';
import { V2Client } from '../../registry/v2/test-support.ts';
import type { Config } from '../../shared/config/index.ts';
import { ensureLocations } from '../../shared/db/blobs.ts';
import { createLogger } from '../../shared/runtime/logger.ts';
import { registry as metrics } from '../../shared/metrics/index.ts';
import { startOutboxRelay, type OutboxRelay } from '../../shared/runtime/outbox-relay.ts';
import { createProducer, type Producer } from '../../shared/runtime/producer.ts';
import { runWorker, type RunningWorker } from '../../shared/runtime/run-worker.ts';
import { blobKey, createDistributedStorage, type DistributedStorage } from '../../shared/storage/index.ts';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.ts';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { AZURITE, GCS_EMULATOR, RADOSGW } from '../servers/storage-endpoints.ts';
import { imagestoragereplication } from '../../queues/imagestoragereplication.ts';
import type { ReplicationTiming } from '../../workers/storagereplicationworker/handler.ts';
import { storagereplicationworker } from '../../workers/storagereplicationworker/index.ts';

type LocationEntry = [string, Record<string, unknown>];

/** A second RadosGW bucket, for same-provider (server-side) copies. */
export const SECOND_BUCKET = 'quayfleet-georep';

/** Creates `bucket` on the test RadosGW (an existing one is fine). */
export async function ensureRadosgwBucket(bucket: string): Promise<void> {
  const client = new S3Client({
    endpoint: RADOSGW.endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: RADOSGW.accessKey, secretAccessKey: RADOSGW.secretKey },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (error) {
    if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes((error as Error).name)) throw error;
  } finally {
    client.destroy();
  }
}

/** Location entries of the test servers, each under its own fresh storage_path. */
export const locations = {
  radosgw: (bucket: string = RADOSGW.bucket, port: number = RADOSGW.port): LocationEntry => ['RadosGWStorage', {
    hostname: RADOSGW.host, port, is_secure: false, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey,
    bucket_name: bucket, storage_path: `/georep-${randomBytes(4).toString('hex')}`,
  }],
  azurite: (): LocationEntry => ['AzureStorage', {
    azure_container: AZURITE.container, azure_account_name: AZURITE.accountName, azure_account_key: AZURITE.accountKey,
    endpoint_url: AZURITE.endpoint, storage_path: `/georep-${randomBytes(4).toString('hex')}`,
  }],
  gcs: (): LocationEntry => ['GoogleCloudStorage', {
    bucket_name: GCS_EMULATOR.bucket, api_endpoint: GCS_EMULATOR.endpoint, keyfile: fakeServiceAccountKey(),
    storage_path: `/georep-${randomBytes(4).toString('hex')}`,
  }],
};

let serviceAccountKey: string | undefined;
function fakeServiceAccountKey(): string {
  if (serviceAccountKey) return serviceAccountKey;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  serviceAccountKey = JSON.stringify({
    type: 'service_account', project_id: GCS_EMULATOR.projectId,
    client_email: `quayfleet-test@${GCS_EMULATOR.projectId}.iam.gserviceaccount.com`,
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
  });
  return serviceAccountKey;
}

export interface GeoFixture {
  readonly registry: TestRegistry;
  readonly config: Config;
  /** Location names in configuration order: [0] is pod A's preference, [1] pod B's. */
  readonly names: readonly string[];
  /** Pod A's storage (preference names[0]) and pod B's (override names[1]). */
  readonly storageA: DistributedStorage;
  readonly storageB: DistributedStorage;
  readonly podB: FastifyInstance;
  readonly producer: Producer;
  /** A client for pod A (and pod B) with push and pull on `repository`. */
  client(repository: string, pod?: 'A' | 'B'): Promise<V2Client>;
  /** Starts a worker (pod A's storage) with `timing` and job leases of `lockDurationMs`; stopped by close(). */
  startWorker(timing?: Partial<ReplicationTiming>, lockDurationMs?: number): Promise<RunningWorker>;
  /** The BullMQ prefix of the fixture's queues. */
  readonly prefix: string;
  /** Location names holding `digest`, sorted. */
  placements(digest: string): Promise<string[]>;
  /** sha256 of the object of `digest` at `location`, or undefined when missing. */
  objectDigest(location: string, digest: string): Promise<string | undefined>;
  /** Replication jobs in a state (`waiting`, `delayed`, `active`, `completed`, `failed`). */
  jobState(storageId: number): Promise<string>;
  close(): Promise<void>;
}

/** Builds a fixture over `entries` (name -> location), default locations = every name. */
export async function createGeoFixture(label: string, entries: Record<string, LocationEntry>, options: { defaultLocations?: string[]; extraConfig?: Record<string, unknown> } = {}): Promise<GeoFixture> {
  const names = Object.keys(entries);
  const registry = await startTestRegistry({
    label,
    config: {
      FEATURE_STORAGE_REPLICATION: true,
      DISTRIBUTED_STORAGE_CONFIG: entries,
      DISTRIBUTED_STORAGE_PREFERENCE: names,
      DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: options.defaultLocations ?? names,
      ...options.extraConfig,
    },
  });
  const config = registry.deps.config;
  const db = registry.db;
  await ensureLocations(db, names);
  const storageA = registry.deps.storage;
  const storageB = await createDistributedStorage(config.quay, { preferenceOverride: names[1] });
  const podB = await buildRegistryApp({ ...registry.deps, storage: storageB });
  const prefix = uniquePrefix(label);
  const producer = createProducer({ url: REDIS_URL, prefix });
  const log = createLogger({ level: 'silent' });
  const relay: OutboxRelay = await startOutboxRelay({ db, connectionString: registry.database.url, producer, log });
  const workers: RunningWorker[] = [];
  const users = new Set<string>();

  return {
    registry, config, names, storageA, storageB, podB, producer, prefix,
    async client(repository, pod = 'A') {
      const namespace = repository.split('/')[0]!;
      if (!users.has(namespace)) {
        await registry.createUser(namespace, 'password1');
        users.add(namespace);
      }
      const token = await registry.tokenFor(namespace, 'password1', [`repository:${repository}:pull,push`]);
      return new V2Client(pod === 'A' ? registry.app : podB, token);
    },
    async startWorker(timing = {}, lockDurationMs) {
      // Without the reconciler's schedule: a sweep runs only when one is enqueued (sweep.test.ts).
      const worker = await runWorker({ ...storagereplicationworker, schedule: undefined }, {
        config, services: { db, storage: storageA, config, replicationTiming: timing }, redis: { url: REDIS_URL, prefix }, log,
        ...(lockDurationMs ? { lease: { lockDurationMs, stalledIntervalMs: lockDurationMs / 2 } } : {}),
      });
      if (worker.disabled) throw new Error('storagereplicationworker did not start');
      workers.push(worker);
      return worker;
    },
    async placements(digest) {
      const { rows } = await db.query<{ name: string }>(
        `SELECT l.name FROM imagestorageplacement p JOIN imagestoragelocation l ON l.id = p.location_id
           JOIN imagestorage s ON s.id = p.storage_id WHERE s.content_checksum = $1 ORDER BY l.name`, [digest]);
      return rows.map((r) => r.name);
    },
    async objectDigest(location, digest) {
      const store = storageA.store(location);
      if (!(await store.exists(blobKey(digest)))) return undefined;
      const hash = createHash('sha256');
      for await (const chunk of await store.get(blobKey(digest))) hash.update(chunk as Buffer);
      return `sha256:${hash.digest('hex')}`;
    },
    async jobState(storageId) {
      const job = await producer.queue(imagestoragereplication.name).getJob(`imagestoragereplication/${storageId}`);
      return job ? job.getState() : 'absent';
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop(2000)));
      await relay.stop();
      await producer.queue(imagestoragereplication.name).obliterate({ force: true });
      await producer.close();
      await podB.close();
      await storageB.close();
      await storageA.close();
      await registry.close();
    },
  };
}

/** Sum of a counter's samples matching `labels` (a histogram's `_count` samples when `name` ends so). */
export async function metricSum(name: string, labels: Record<string, string> = {}): Promise<number> {
  const base = name.replace(/_count$/, '');
  const metric = metrics.getSingleMetric(base);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.filter((v) => (base === name || (v as { metricName?: string }).metricName === name)
    && Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x)).reduce((n, v) => n + v.value, 0);
}
