/**
 * GC deletion rate on an S3 server (Ceph RadosGW, started by the storage test harness): a registry
 * whose manifests are all garbage, placed only at a RadosGWStorage location, collected by the
 * gcworker; blobs deleted per second end to end (rows, pending records, batched DeleteObjects).
 */
import { randomBytes } from 'node:crypto';
import { ensureLocations } from '../../shared/db/blobs.ts';
import type { Pool } from '../../shared/db/pool.ts';
import { createDistributedStorage } from '../../shared/storage/distributed.ts';
import { blobKey } from '../../shared/storage/keys.ts';
import { buildModel, insertModelRows, writeModelObjects } from '../../test/gc/bulk.ts';
import { RADOSGW } from '../../test/servers/storage-endpoints.ts';
import { startStorageServers } from '../../test/servers/storage.ts';
import { collectAll, startGcWorker } from './quayfleet.ts';

/** Figures of the RadosGW run. */
export interface RadosgwFigures {
  readonly blobs: number;
  readonly seconds: number;
  readonly blobsPerSecond: number;
  readonly leftOver: number;
}

/** Collects `manifests` x 5 garbage blobs stored on RadosGW; returns the rate. */
export async function radosgwDeletionRate(pool: Pool, manifests: number): Promise<RadosgwFigures> {
  const stopServers = await startStorageServers();
  const storage = await createDistributedStorage({
    DISTRIBUTED_STORAGE_CONFIG: {
      radosgw: ['RadosGWStorage', {
        hostname: RADOSGW.host, port: RADOSGW.port, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey,
        bucket_name: RADOSGW.bucket, storage_path: `gcbench-${randomBytes(4).toString('hex')}`,
      }],
    },
    DISTRIBUTED_STORAGE_PREFERENCE: ['radosgw'],
  });
  try {
    const locationId = (await ensureLocations(pool, ['radosgw'])).get('radosgw')!;
    const model = buildModel({ namespaces: 1, repositories: 10, manifests, blobsPerManifest: 5, garbageFraction: 1, prefix: `rgw${randomBytes(3).toString('hex')}` });
    await writeModelObjects(model, storage.preferredStore(), 32);
    const repositoryIds = await insertModelRows(pool, model, { locationId, nowMs: Date.now(), windowS: 0 });
    const fleet = await startGcWorker(pool, storage, 8);
    const seconds = await collectAll(fleet, repositoryIds);
    await fleet.stop();
    const store = storage.preferredStore();
    const keys = model.repositories.flatMap((r) => r.manifests.flatMap((m) => m.blobs.map((b) => blobKey(b.digest))));
    const leftOver = (await Promise.all(keys.slice(0, 200).map((key) => store.exists(key)))).filter(Boolean).length;
    return { blobs: model.garbageBlobs, seconds, blobsPerSecond: Math.round(model.garbageBlobs / seconds), leftOver };
  } finally {
    await storage.close();
    await stopServers();
  }
}
