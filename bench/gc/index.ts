/**
 * GC benchmark against CNCF distribution's offline garbage collector, in the same run:
 *
 * 1. A registry of 10k manifests and 50k blobs, 30% garbage (untagged by a tag ended before the
 *    time machine), on local storage: quayfleet's rows and objects, and the same model in
 *    distribution's filesystem layout.
 * 2. quayfleet: one `garbagecollection` job per repository through the real gcworker (8 at once)
 *    while the front end serves a stream of image pushes (bench/gc/pusher.ts; each must pull whole
 *    afterwards); distribution: `docker-registry garbage-collect --delete-untagged` (offline,
 *    read-only registry). Wall time, blobs deleted per second, and the ratio distribution/quayfleet
 *    (target >= 15). Steps 1-2 run BENCH_RUNS times (default 3) on fresh data: min, median, max.
 * 3. Deletion rate on Ceph RadosGW (target >= 500 blobs/s) and the latency from a tag leaving the
 *    time machine to its unique blobs being gone from storage (target < 5 s).
 *
 *   npm run bench -- gc        (BENCH_SCALE=0.1 for a tenth; BENCH_RUNS=1; BENCH_SKIP_RADOSGW=1 to skip step 3's S3 part)
 *
 * The last line printed is one JSON object with every figure and "ratio" (the median run), or no
 * ratio when distribution failed.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureLocations } from '../../shared/db/blobs.ts';
import { auditStorage } from '../../shared/db/gc/audit.ts';
import { createDistributedStorage } from '../../shared/storage/distributed.ts';
import { buildModel, insertModelRows, writeModelObjects } from '../../test/gc/bulk.ts';
import { countDistributionBlobs, runDistributionGc, writeDistributionLayout } from './distribution.ts';
import { measureLatency } from './latency.ts';
import { collectAll, createBenchDatabase, startGcWorker, type BenchDatabase } from './quayfleet.ts';
import { countFilesystemCalls, createMeteredPool, startCostWindow, type CostCounts, type CostPerBlob } from './cost.ts';
import { startPusher } from './pusher.ts';
import { loadLine, printFailure, printResult, runPeer } from '../report.ts';
import { radosgwDeletionRate } from './radosgw.ts';

const scale = Number(process.env.BENCH_SCALE ?? 1);
if (!(scale > 0)) throw new Error('BENCH_SCALE must be a positive number');
const MANIFESTS = Math.max(10, Math.round(10_000 * scale));
const REPOSITORIES = Math.max(2, Math.round(100 * scale));
const CONCURRENCY = Number(process.env.BENCH_GC_CONCURRENCY ?? 8);

function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  return fn().then((value) => {
    console.log(`${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return value;
  });
}

const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
/** BENCH_GC_PUSHES=0 leaves the front end out, so this process's CPU is GC's alone. */
const PUSHES = process.env.BENCH_GC_PUSHES !== '0';
const counts: CostCounts = { roundTrips: 0, unlinks: 0, rmdirs: 0 };
countFilesystemCalls(counts);

/** One run's figures: each collector over its own fresh copy of the model. */
interface RunFigures {
  readonly quayfleet: { seconds: number; blobsDeleted: number; blobsPerSecond: number; auditOk: boolean; pushesDuringGc: number; pushesVerified: number; perBlob: CostPerBlob };
  readonly distribution: { seconds: number; blobsDeleted: number; manifestsDeleted: number; blobsPerSecond: number; blobsLeft: number };
  readonly ratio: number;
}

/** Seeds a fresh model on both sides, collects with quayfleet (serving pushes) then distribution. */
async function oneRun(run: number, db: BenchDatabase, root: string): Promise<RunFigures> {
  const storage = await createDistributedStorage({
    DISTRIBUTED_STORAGE_CONFIG: { local: ['LocalStorage', { storage_path: path.join(root, 'quayfleet') }] }, DISTRIBUTED_STORAGE_PREFERENCE: ['local'],
  });
  try {
    const locationId = (await ensureLocations(db.pool, ['local'])).get('local')!;
    const model = buildModel({ namespaces: 10, repositories: REPOSITORIES, manifests: MANIFESTS, blobsPerManifest: 5, garbageFraction: 0.3, prefix: `r${run}` });
    console.log(`run ${run + 1}/${RUNS}: ${MANIFESTS} manifests, ${model.blobs} blobs in ${REPOSITORIES} repositories; garbage: ${model.garbageBlobs} blobs, ${model.garbageBytes} bytes`);
    const repositoryIds = await timed('  quayfleet setup (objects + rows)', async () => {
      await writeModelObjects(model, storage.preferredStore());
      return insertModelRows(db.pool, model, { locationId, nowMs: Date.now(), windowS: 1_209_600 });
    });
    const distributionConfig = await timed('  distribution setup (layout)', () => writeDistributionLayout(model, path.join(root, `distribution-${run}`)));
    await db.pool.query('VACUUM ANALYZE');

    const pusher = PUSHES ? await startPusher(db.pool, storage) : undefined;
    const gcPool = createMeteredPool(db.url, counts);
    const fleet = await startGcWorker(gcPool, storage, CONCURRENCY);
    const window = await startCostWindow(gcPool, counts);
    const quaySeconds = await collectAll(fleet, repositoryIds);
    const perBlob = await window.end(model.garbageBlobs);
    await fleet.stop();
    await gcPool.end();
    const pushes = pusher ? await pusher.stop() : { pushes: 0, verified: 0 };
    const audit = await auditStorage(db.pool, storage, storage.locations);
    const quay = {
      seconds: round(quaySeconds), blobsDeleted: model.garbageBlobs, blobsPerSecond: Math.round(model.garbageBlobs / quaySeconds), auditOk: audit.ok,
      pushesDuringGc: pushes.pushes, pushesVerified: pushes.verified, perBlob,
    };
    console.log(`  quayfleet GC: ${quay.blobsDeleted} blobs in ${quay.seconds} s = ${quay.blobsPerSecond} blobs/s (gcworker, ${CONCURRENCY} jobs at once) while the registry took ${pushes.pushes} image pushes (all ${pushes.verified} pull whole after); audit ok: ${audit.ok}`);
    console.log(`  per blob deleted: ${perBlob.roundTrips} database round trips, ${perBlob.nodeCpuMs} ms CPU of this process${PUSHES ? ' (front end included)' : ''}, ${perBlob.postgresCpuMs} ms CPU of GC's Postgres backends, ${perBlob.unlinks} unlink + ${perBlob.rmdirs} rmdir`);
    if (!audit.ok) throw new Error(`quayfleet GC left storage and database disagreeing: ${JSON.stringify(audit.locations)}`);

    const peer = await runPeer('distribution', () => runDistributionGc(distributionConfig));
    const left = await countDistributionBlobs(path.join(root, `distribution-${run}`));
    const dist = { seconds: round(peer.seconds), blobsDeleted: peer.blobsDeleted, manifestsDeleted: peer.manifestsDeleted, blobsPerSecond: Math.round(peer.blobsDeleted / peer.seconds), blobsLeft: left };
    console.log(`  distribution offline GC: ${dist.blobsDeleted} blobs (manifests included) in ${dist.seconds} s = ${dist.blobsPerSecond} blobs/s; ${left} blobs left`);
    const ratio = round(peer.seconds / quaySeconds);
    console.log(`  ratio (distribution wall time / quayfleet wall time): ${ratio}x (target >= 15x); ${loadLine('after').replace('load average after', 'load average now')}`);
    await fs.rm(path.join(root, `distribution-${run}`), { recursive: true, force: true });
    return { quayfleet: quay, distribution: dist, ratio };
  } finally {
    await storage.close();
  }
}

console.log(loadLine('before'));
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'quayfleet-gcbench-'));
const db = await createBenchDatabase();
try {
  const runs: RunFigures[] = [];
  for (let run = 0; run < RUNS; run++) runs.push(await oneRun(run, db, root));
  const ratios = runs.map((r) => r.ratio).sort((a, b) => a - b);
  const ratio = { min: ratios[0]!, median: ratios[Math.floor(ratios.length / 2)]!, max: ratios.at(-1)! };
  console.log(`ratio over ${RUNS} runs: min ${ratio.min}x, median ${ratio.median}x, max ${ratio.max}x (target >= 15x)`);

  const storage = await createDistributedStorage({
    DISTRIBUTED_STORAGE_CONFIG: { local: ['LocalStorage', { storage_path: path.join(root, 'latency') }] }, DISTRIBUTED_STORAGE_PREFERENCE: ['local'],
  });
  try {
    const locationId = (await ensureLocations(db.pool, ['local'])).get('local')!;
    const radosgw = process.env.BENCH_SKIP_RADOSGW ? undefined : await radosgwDeletionRate(db.pool, Math.max(20, Math.round(1000 * scale)));
    if (radosgw) console.log(`RadosGW: ${radosgw.blobs} blobs in ${round(radosgw.seconds)} s = ${radosgw.blobsPerSecond} blobs/s (target >= 500); ${radosgw.leftOver} of 200 sampled left`);
    const latencies = await measureLatency(db.pool, db.url, storage, locationId, 5);
    const sorted = [...latencies].sort((a, b) => a - b);
    const latency = { samplesMs: latencies, p50Ms: sorted[Math.floor(sorted.length / 2)]!, maxMs: sorted[sorted.length - 1]! };
    console.log(`tag leaves time machine -> unique blobs gone: p50 ${latency.p50Ms} ms, max ${latency.maxMs} ms (target < 5000 ms)`);
    printResult({
      benchmark: 'gc', scale, runs: RUNS, manifests: MANIFESTS, blobs: MANIFESTS * 5, repositories: REPOSITORIES,
      perRun: runs, ratio: ratio.median, ratioMin: ratio.min, ratioMax: ratio.max, radosgw: radosgw && { ...radosgw, seconds: round(radosgw.seconds) }, latency,
    });
  } finally {
    await storage.close();
  }
} catch (error) {
  printFailure('gc', error);
} finally {
  await db.drop();
  await fs.rm(root, { recursive: true, force: true });
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
