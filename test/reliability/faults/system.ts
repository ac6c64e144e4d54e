/**
 * The system a fault run breaks: servers of its own (a Postgres cluster, a redis-server, a fault
 * proxy in front of the shared RadosGW, a small tmpfs) and two `quayfleet all` processes on them:
 *
 * - fleet `rgw` stores blobs in RadosGW through the fault proxy;
 * - fleet `disk` stores blobs with the filesystem driver on the tmpfs, so the disk can fill.
 *
 * Both use the same Postgres cluster (one database each) and the same redis-server (one database
 * each), so a Postgres or Redis fault hits both, as it would hit every pod of a real fleet.
 * Fixed ports in 22200-22299.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { createFleetPool, type FleetPool, type StorageConfig } from './fleet-pool.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { startPrivateRedis, type PrivateRedis } from '../../servers/private-redis.ts';
import { startPrivatePostgres, type PrivatePostgres } from '../../faults/private-postgres.ts';
import { startStorageServers } from '../../servers/storage.ts';
import { RADOSGW } from '../../servers/storage-endpoints.ts';
import { portAnswers } from '../../servers/storage-processes.ts';

const run = promisify(execFile);

export const PORTS = {
  postgres: 22202,
  redis: 22201,
  proxy: 22203,
  rgwHttp: 22210, rgwMetrics: 22211,
  diskHttp: 22220, diskMetrics: 22221,
} as const;

/** Everything a fault run started; `close()` takes it all down. */
export interface FaultSystem {
  readonly postgres: PrivatePostgres;
  readonly redis: PrivateRedis;
  readonly proxy: FaultProxy;
  /** The tmpfs the `disk` fleet stores blobs on. */
  readonly disk: { readonly dir: string; readonly bytes: number };
  readonly fleets: FleetPool;
  close(): Promise<void>;
}

const PASSWORD = 'faults-password-1';

/** Storage configs of the two fleets (the proxy's port for `rgw`, the tmpfs for `disk`). */
function storageConfig(kind: 'rgw' | 'disk', runId: string, diskDir: string): StorageConfig {
  if (kind === 'disk') return { default: ['LocalStorage', { storage_path: diskDir }] };
  return {
    default: ['RadosGWStorage', {
      hostname: '127.0.0.1', port: PORTS.proxy, is_secure: false, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey,
      bucket_name: RADOSGW.bucket, storage_path: `faults-${runId}`,
    }],
  };
}

/** Mounts a tmpfs of `bytes` at a new directory (root only; the run says so when it cannot). */
async function mountTmpfs(bytes: number): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qf-faults-disk-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  } catch (error) {
    await fs.rm(dir, { recursive: true, force: true });
    throw new Error(`cannot mount a tmpfs for the full-disk fault (needs root): ${(error as Error).message}`);
  }
  return dir;
}

/** Starts the servers and both fleets; `log` gets one line per step. */
export async function startFaultSystem(options: { runId: string; diskBytes: number; log(line: string): void }): Promise<FaultSystem> {
  const { runId, log } = options;
  const cleanups: (() => Promise<unknown>)[] = [];
  const close = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: Error) => log(`cleanup: ${error.message}`));
  };
  try {
    // Under vitest the global setup has started RadosGW; run alone (npm run reliability) the run
    // starts it the same way (reusing a running one, stopping only what it started).
    if (!(await portAnswers(RADOSGW.port))) cleanups.push(await startStorageServers());
    const [postgres, redis, proxy, diskDir] = await Promise.all([
      startPrivatePostgres(PORTS.postgres), startPrivateRedis(PORTS.redis),
      startFaultProxy(PORTS.proxy, { host: RADOSGW.host, port: RADOSGW.port }), mountTmpfs(options.diskBytes),
    ]);
    cleanups.push(() => postgres.destroy(), () => redis.destroy(), () => proxy.close(),
      async () => { await run('umount', ['-l', diskDir]); await fs.rm(diskDir, { recursive: true, force: true }); });
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query('CREATE DATABASE fleet_disk');
    await admin.end();
    const diskDbUrl = postgres.url.replace(/\/postgres$/, '/fleet_disk');
    log(`servers up: postgres :${PORTS.postgres}, redis :${PORTS.redis}, fault proxy :${PORTS.proxy} -> RadosGW :${RADOSGW.port}, tmpfs ${diskDir} (${options.diskBytes} bytes)`);

    const fleets = createFleetPool();
    cleanups.push(() => fleets.stopAll());
    await Promise.all([
      fleets.start({
        name: 'rgw', dbUri: postgres.url, redisUrl: `${redis.url}/0`, httpPort: PORTS.rgwHttp, metricsPort: PORTS.rgwMetrics,
        storage: storageConfig('rgw', runId, diskDir), user: 'faultsrgw', password: PASSWORD,
      }),
      fleets.start({
        name: 'disk', dbUri: diskDbUrl, redisUrl: `${redis.url}/1`, httpPort: PORTS.diskHttp, metricsPort: PORTS.diskMetrics,
        storage: storageConfig('disk', runId, diskDir), user: 'faultsdisk', password: PASSWORD,
      }),
    ]);
    log('fleets up: rgw (RadosGW through the fault proxy), disk (filesystem driver on the tmpfs)');
    return { postgres, redis, proxy, disk: { dir: diskDir, bytes: options.diskBytes }, fleets, close };
  } catch (error) {
    await close();
    throw error;
  }
}
