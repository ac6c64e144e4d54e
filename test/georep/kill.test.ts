/**
 * SIGKILL of the storagereplicationworker in the middle of a copy (invariant 4): nothing partial
 * is visible or recorded at the destination, and the job completes when a worker runs again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagestoragereplication } from '../../queues/imagestoragereplication.ts';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { REDIS_URL } from '../helpers/redis.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { RADOSGW } from '../servers/storage-endpoints.ts';
import { createGeoFixture, ensureRadosgwBucket, locations, SECOND_BUCKET, type GeoFixture } from './fixture.ts';

const CHILD = path.resolve(import.meta.dirname, 'worker-child.ts');

describe('SIGKILL mid-copy', { timeout: 300_000 }, () => {
  let f: GeoFixture;
  let proxy: TcpProxy;
  let child: ChildProcess | undefined;
  let rawConfig: Record<string, unknown>;
  beforeAll(async () => {
    await ensureRadosgwBucket(SECOND_BUCKET);
    proxy = await startTcpProxy({ host: RADOSGW.host, port: RADOSGW.port });
    const entries = { usstorage: locations.radosgw(), eustorage: locations.radosgw(SECOND_BUCKET, proxy.port) };
    rawConfig = {
      FEATURE_STORAGE_REPLICATION: true, DISTRIBUTED_STORAGE_CONFIG: entries,
      DISTRIBUTED_STORAGE_PREFERENCE: ['usstorage'], DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: ['usstorage', 'eustorage'],
    };
    f = await createGeoFixture('georepkill', entries);
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await f?.close();
    await proxy?.stop();
  });

  it('leaves no partial object and no placement, and a rerun completes the copy', async () => {
    const bytes = randomBytes(6 * 1024 * 1024);
    const client = await f.client('hank/big');
    const digest = await client.uploadBlob('hank/big', bytes, 'monolithic');
    const { rows: [blob] } = await f.registry.db.query<{ id: number }>(`SELECT id FROM imagestorage WHERE content_checksum = $1`, [digest]);
    const { rows: [ns] } = await f.registry.db.query<{ id: number }>(`SELECT id FROM namespace WHERE username = 'hank'`);
    proxy.throttle(1024 * 1024);
    const before = proxy.bytesUp;
    await f.producer.enqueue(imagestoragereplication, { v: 1, storageId: blob!.id, namespaceId: ns!.id, digest });

    // node itself with tsx's loader, not the tsx CLI: the CLI runs the script in a grandchild that
    // a SIGKILL of the CLI leaves running, so the kill would not stop the copy.
    child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      env: { ...process.env, QF_CONFIG: JSON.stringify(rawConfig), QF_DATABASE_URL: f.registry.database.url, QF_REDIS_URL: REDIS_URL, QF_PREFIX: f.prefix },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await waitFor(() => proxy.bytesUp - before > 2 * 1024 * 1024, 120_000, 20);
    child.kill('SIGKILL');
    await new Promise((resolve) => child!.once('exit', resolve));
    child = undefined;

    expect(await f.placements(digest)).toEqual(['usstorage']);
    expect(await f.objectDigest('eustorage', digest)).toBeUndefined();

    proxy.throttle(undefined);
    await f.startWorker({}, 2000);
    await waitFor(async () => (await f.placements(digest)).length === 2, 120_000, 100);
    expect(await f.objectDigest('eustorage', digest)).toBe(digest);
  });
});
