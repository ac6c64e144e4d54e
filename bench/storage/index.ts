/**
 * Storage benchmark: for each driver on the local test servers (LocalStorage, RadosGWStorage on
 * Ceph RadosGW, AzureStorage on Azurite, GoogleCloudStorage on the Cloud Storage emulator), write
 * and read 1 GiB as 16 x 64 MiB objects and as 16384 x 64 KiB objects, and delete 10 000 objects in
 * batches and one by one. Prints one line per figure, then, as the last line, one JSON object.
 *
 *   npx tsx bench/storage/index.ts
 *
 * Environment: BENCH_SCALE (default 1; 0.1 = a tenth of every count), BENCH_DRIVERS (comma list
 * of local,radosgw,azurite,gcs), BENCH_CONCURRENCY_LARGE (default 4), BENCH_CONCURRENCY_SMALL
 * (default 16). Figures from the emulators measure this code against those emulators, not the
 * clouds; the servers share this machine's cores with the benchmark.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createObjectStore } from '../../shared/storage/drivers/index.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';
import { AZURITE, GCS_EMULATOR, RADOSGW } from '../../test/servers/storage-endpoints.ts';
import { startStorageServers } from '../../test/servers/storage.ts';
import { deletes, rssSampler, writeRead, type Phase } from './workloads.ts';

const MiB = 1024 * 1024;
const scale = Number(process.env.BENCH_SCALE ?? 1);
if (!(scale > 0)) throw new Error('BENCH_SCALE must be a positive number');
const scaled = (n: number): number => Math.max(1, Math.round(n * scale));
const counts = { large: scaled(16), small: scaled(16_384), deletes: scaled(10_000) };
const concurrency = { large: Number(process.env.BENCH_CONCURRENCY_LARGE ?? 4), small: Number(process.env.BENCH_CONCURRENCY_SMALL ?? 16) };
const localRoot = mkdtempSync(path.join(os.tmpdir(), 'quayfleet-bench-'));

const TARGETS: Record<string, () => ObjectStore> = {
  local: () => createObjectStore('LocalStorage', { storage_path: localRoot }),
  radosgw: () => createObjectStore('RadosGWStorage', {
    hostname: RADOSGW.host, port: RADOSGW.port, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey, bucket_name: RADOSGW.bucket, storage_path: 'bench',
  }),
  azurite: () => createObjectStore('AzureStorage', {
    azure_container: AZURITE.container, azure_account_name: AZURITE.accountName, azure_account_key: AZURITE.accountKey, endpoint_url: AZURITE.endpoint, storage_path: 'bench',
  }),
  gcs: () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyfile = JSON.stringify({ client_email: 'bench@demo-quayfleet.iam.gserviceaccount.com', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }) });
    return createObjectStore('GoogleCloudStorage', { bucket_name: GCS_EMULATOR.bucket, storage_path: 'bench', api_endpoint: GCS_EMULATOR.endpoint, keyfile });
  },
};

interface DriverFigures {
  largeWrite: Phase;
  largeRead: Phase;
  smallWrite: Phase;
  smallRead: Phase;
  deleteBatch: Phase;
  deleteOneByOne: Phase;
  /** deleteMany objects/s over one-by-one objects/s. */
  deleteSpeedup: number;
  peakRssMiB: number;
}

function line(driver: string, what: string, p: Phase): void {
  const size = p.bytes > 0 ? `${(p.bytes / MiB).toFixed(0)} MiB, ${p.mbPerSec} MB/s, ` : '';
  console.log(`${driver.padEnd(8)} ${what.padEnd(22)} ${String(p.objects).padStart(6)} objects in ${p.seconds.toFixed(2)} s: ${size}${p.objectsPerSec} objects/s`);
}

async function benchDriver(name: string, store: ObjectStore): Promise<DriverFigures> {
  const prefix = `run-${randomBytes(4).toString('hex')}/`;
  const rss = rssSampler();
  await store.ping();
  const large = await writeRead(store, `${prefix}large/`, counts.large, 64 * MiB, concurrency.large);
  line(name, 'write 64 MiB objects', large.write);
  line(name, 'read 64 MiB objects', large.read);
  const small = await writeRead(store, `${prefix}small/`, counts.small, 64 * 1024, concurrency.small);
  line(name, 'write 64 KiB objects', small.write);
  line(name, 'read 64 KiB objects', small.read);
  const removal = await deletes(store, `${prefix}delete/`, counts.deletes, concurrency.small);
  line(name, 'delete (deleteMany)', removal.batch);
  line(name, 'delete (one by one)', removal.oneByOne);
  const peakRssMiB = rss.stop();
  console.log(`${name.padEnd(8)} deleteMany is ${removal.speedup}x one-by-one; peak RSS ${peakRssMiB} MiB`);
  return {
    largeWrite: large.write, largeRead: large.read, smallWrite: small.write, smallRead: small.read,
    deleteBatch: removal.batch, deleteOneByOne: removal.oneByOne, deleteSpeedup: removal.speedup, peakRssMiB,
  };
}

const selected = (process.env.BENCH_DRIVERS ?? Object.keys(TARGETS).join(',')).split(',').map((d) => d.trim()).filter(Boolean);
const unknown = selected.filter((d) => !(d in TARGETS));
if (unknown.length > 0) throw new Error(`unknown BENCH_DRIVERS ${unknown.join(', ')} (known: ${Object.keys(TARGETS).join(', ')})`);

console.log(`storage benchmark: scale ${scale} (${counts.large} x 64 MiB, ${counts.small} x 64 KiB, ${counts.deletes} deletes), concurrency ${concurrency.large}/${concurrency.small}, ${os.cpus().length} cores`);
const stopServers = await startStorageServers();
const figures: Record<string, DriverFigures> = {};
try {
  for (const name of selected) {
    const store = TARGETS[name]!();
    try {
      figures[name] = await benchDriver(name, store);
    } finally {
      await store.close();
    }
  }
} finally {
  await stopServers();
  rmSync(localRoot, { recursive: true, force: true });
}
console.log(JSON.stringify({ benchmark: 'storage', scale, counts, concurrency, cores: os.cpus().length, node: process.version, drivers: figures }));
