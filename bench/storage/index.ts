/**
 * Storage benchmark: for each driver on the local test servers (LocalStorage, RadosGWStorage on
 * Ceph RadosGW, AzureStorage on a private Azurite (see azurite.ts), GoogleCloudStorage on the Cloud
 * Storage emulator, SwiftStorage on RadosGW's Swift API), write
 * and read 1 GiB as 16 x 64 MiB objects and as 16384 x 64 KiB objects, and delete 10 000 objects in
 * batches and one by one. The peer is the backend's SDK used directly (`baseline.ts`): 4096 small
 * objects written and read without the storage layer, so its cost per object shows as a ratio.
 * Prints one line per figure, then, as the last line, one JSON object.
 *
 *   npx tsx bench/storage/index.ts
 *
 * Environment: BENCH_SCALE (default 1; 0.1 = a tenth of every count), BENCH_DRIVERS (comma list
 * of local,radosgw,azurite,gcs,swift), BENCH_CONCURRENCY_LARGE (default 4), BENCH_CONCURRENCY_SMALL
 * (default 16). Figures from the emulators measure this code against those emulators, not the
 * clouds; the servers share this machine's cores with the benchmark.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createObjectStore, loadStorageDrivers } from '../../shared/storage/drivers/index.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';
import { AZURITE, GCS_EMULATOR, RADOSGW, RADOSGW_SWIFT } from '../../test/servers/storage-endpoints.ts';
import { startStorageServers } from '../../test/servers/storage.ts';
import { BENCH_AZURITE_CONTAINER, BENCH_AZURITE_ENDPOINT, startBenchAzurite } from './azurite.ts';
import { RAW_TARGETS } from './baseline.ts';
import { deletes, rssSampler, writeRead, type Phase } from './workloads.ts';
import { loadLine, printResult } from '../report.ts';

console.log(loadLine('before'));

// The cloud drivers load on demand (drivers/index.ts); this file uses them directly.
await loadStorageDrivers();

const MiB = 1024 * 1024;
const scale = Number(process.env.BENCH_SCALE ?? 1);
if (!(scale > 0)) throw new Error('BENCH_SCALE must be a positive number');
const scaled = (n: number): number => Math.max(1, Math.round(n * scale));
const counts = { large: scaled(16), small: scaled(16_384), deletes: scaled(10_000), baseline: scaled(4096) };
const concurrency = { large: Number(process.env.BENCH_CONCURRENCY_LARGE ?? 4), small: Number(process.env.BENCH_CONCURRENCY_SMALL ?? 16) };
const localRoot = mkdtempSync(path.join(os.tmpdir(), 'quayfleet-bench-'));
// Azurite's cost per request grows with the blobs in a container (see azurite.ts), so 10 000 live
// objects would take it most of an hour.
const deleteCaps: Record<string, number> = { azurite: Number(process.env.BENCH_AZURITE_DELETES ?? 2000) };

const TARGETS: Record<string, () => ObjectStore> = {
  local: () => createObjectStore('LocalStorage', { storage_path: localRoot }),
  radosgw: () => createObjectStore('RadosGWStorage', {
    hostname: RADOSGW.host, port: RADOSGW.port, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey, bucket_name: RADOSGW.bucket, storage_path: 'bench',
  }),
  azurite: () => createObjectStore('AzureStorage', {
    azure_container: BENCH_AZURITE_CONTAINER, azure_account_name: AZURITE.accountName, azure_account_key: AZURITE.accountKey, endpoint_url: BENCH_AZURITE_ENDPOINT, storage_path: 'bench',
  }),
  swift: () => createObjectStore('SwiftStorage', {
    auth_url: RADOSGW_SWIFT.authUrl, swift_user: RADOSGW_SWIFT.user, swift_password: RADOSGW_SWIFT.key, swift_container: RADOSGW_SWIFT.container, storage_path: 'bench',
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
  /** The same small-object workload on the SDK directly (the peer). */
  rawSmallWrite: Phase;
  rawSmallRead: Phase;
  /** Storage layer objects/s over raw SDK objects/s (1 = no overhead). */
  layerVsRawWrite: number;
  layerVsRawRead: number;
  deleteBatch: Phase;
  deleteOneByOne: Phase;
  /** deleteMany objects/s over one-by-one objects/s. */
  deleteSpeedup: number;
  /** RSS when the driver's run began, the peak during the 64 MiB phase, and the peak overall. */
  startRssMiB: number;
  largePeakRssMiB: number;
  peakRssMiB: number;
}

function line(driver: string, what: string, p: Phase): void {
  const size = p.bytes > 0 ? `${(p.bytes / MiB).toFixed(0)} MiB, ${p.mbPerSec} MB/s, ` : '';
  console.log(`${driver.padEnd(8)} ${what.padEnd(22)} ${String(p.objects).padStart(6)} objects in ${p.seconds.toFixed(2)} s: ${size}${p.objectsPerSec} objects/s`);
}

async function benchDriver(name: string, store: ObjectStore): Promise<DriverFigures> {
  const prefix = `run-${randomBytes(4).toString('hex')}/`;
  global.gc?.();
  const startRssMiB = Math.round(process.memoryUsage().rss / MiB);
  const rss = rssSampler();
  const largeRss = rssSampler();
  await store.ping();
  const large = await writeRead(store, `${prefix}large/`, counts.large, 64 * MiB, concurrency.large);
  const largePeakRssMiB = largeRss.stop();
  line(name, 'write 64 MiB objects', large.write);
  line(name, 'read 64 MiB objects', large.read);
  console.log(`${name.padEnd(8)} RSS ${startRssMiB} MiB before, peak ${largePeakRssMiB} MiB while ${concurrency.large} x 64 MiB objects were in flight`);
  const small = await writeRead(store, `${prefix}small/`, counts.small, 64 * 1024, concurrency.small);
  line(name, 'write 64 KiB objects', small.write);
  line(name, 'read 64 KiB objects', small.read);
  const rawStore = RAW_TARGETS[name]!(localRoot);
  const raw = await writeRead(rawStore, `${prefix}raw/`, counts.baseline, 64 * 1024, concurrency.small).finally(() => rawStore.close());
  line(name, 'write 64 KiB, raw SDK', raw.write);
  line(name, 'read 64 KiB, raw SDK', raw.read);
  const ratio = (layer: Phase, peer: Phase): number => Math.round((layer.objectsPerSec / peer.objectsPerSec) * 100) / 100;
  console.log(`${name.padEnd(8)} storage layer vs raw SDK, 64 KiB objects/s: write ${ratio(small.write, raw.write)}x, read ${ratio(small.read, raw.read)}x`);
  const deleteCount = Math.min(counts.deletes, deleteCaps[name] ?? Infinity);
  if (deleteCount < counts.deletes) console.log(`${name.padEnd(8)} deletes capped at ${deleteCount} (BENCH_AZURITE_DELETES): the emulator slows down with every blob it holds`);
  const removal = await deletes(store, `${prefix}delete/`, deleteCount, concurrency.small);
  line(name, 'delete (deleteMany)', removal.batch);
  line(name, 'delete (one by one)', removal.oneByOne);
  const peakRssMiB = rss.stop();
  console.log(`${name.padEnd(8)} deleteMany is ${removal.speedup}x one-by-one; peak RSS ${peakRssMiB} MiB`);
  return {
    largeWrite: large.write, largeRead: large.read, smallWrite: small.write, smallRead: small.read,
    rawSmallWrite: raw.write, rawSmallRead: raw.read, layerVsRawWrite: ratio(small.write, raw.write), layerVsRawRead: ratio(small.read, raw.read),
    deleteBatch: removal.batch, deleteOneByOne: removal.oneByOne, deleteSpeedup: removal.speedup, startRssMiB, largePeakRssMiB, peakRssMiB,
  };
}

const selected = (process.env.BENCH_DRIVERS ?? Object.keys(TARGETS).join(',')).split(',').map((d) => d.trim()).filter(Boolean);
const unknown = selected.filter((d) => !(d in TARGETS));
if (unknown.length > 0) throw new Error(`unknown BENCH_DRIVERS ${unknown.join(', ')} (known: ${Object.keys(TARGETS).join(', ')})`);

console.log(`storage benchmark: scale ${scale} (${counts.large} x 64 MiB, ${counts.small} x 64 KiB, ${counts.deletes} deletes, ${counts.baseline} raw-SDK 64 KiB), concurrency ${concurrency.large}/${concurrency.small}, ${os.cpus().length} cores`);
const stopServers = await startStorageServers();
const stopAzurite = selected.includes('azurite') ? await startBenchAzurite(path.join(localRoot, 'azurite')) : async () => undefined;
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
  await stopAzurite();
  await stopServers();
  rmSync(localRoot, { recursive: true, force: true });
}
// The peer is each backend's SDK used directly, so the headline ratio is the storage layer's rate
// over the raw SDK's for 64 KiB objects, write and read, as a geometric mean over the drivers run.
const layerRatios = Object.values(figures).flatMap((f) => [f.layerVsRawWrite, f.layerVsRawRead]);
const ratio = layerRatios.length > 0 ? Math.round(Math.exp(layerRatios.reduce((sum, r) => sum + Math.log(r), 0) / layerRatios.length) * 100) / 100 : null;
printResult({ benchmark: 'storage', ratio, scale, counts, concurrency, cores: os.cpus().length, node: process.version, drivers: figures });
