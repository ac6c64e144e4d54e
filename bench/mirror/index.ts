/**
 * Mirror benchmark: quayfleet's native copy against skopeo, the same repository from the same
 * upstream in the same run.
 *
 * Upstream: the CNCF distribution registry on 127.0.0.1:15648 (filesystem storage in a temp dir),
 * holding 50 tags that share three 8 MiB base layers (each tag adds a 512 KiB layer of its own),
 * plus one tag with a big layer (256 MiB; BENCH_BIG_MIB=1024 for 1 GiB).
 *
 * - quayfleet: one sync of a mirror selecting every tag (`performMirror` in this process, local
 *   storage, a test database), connecting straight to the upstream as skopeo does; the bytes it
 *   pulled are counted by the upstream itself (distribution's access log: the size of every blob
 *   response); then a second sync (nothing changed upstream) and a second mirror of the same
 *   upstream in another repository (every blob already held).
 * - peer: `skopeo sync --src docker --dest docker` of the same repository into a second, empty
 *   distribution registry (127.0.0.1:15647), what Quay's mirror does per tag with skopeo copy.
 *
 * Reports wall times, `ratio` = skopeo / quayfleet (> 1 = quayfleet faster), bytes pulled / unique
 * bytes (target 1.00), and the RSS growth and peak of this process during the 50-tag sync and during
 * the big tag's sync (flat in blob size when blobs stream: compare BENCH_BIG_MIB=256 and 1024). The last line printed is one JSON object.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { OciLayout } from '../../test/fixtures/oci/layout.ts';
import { startDistribution, type Distribution } from '../../test/helpers/distribution.ts';
import { preparePostgresTemplate } from '../../test/servers/postgres-redis.ts';
import { Semaphore } from '../../workers/repomirrorworker/copy.ts';
import { DEFAULT_SYNC_SETTINGS } from '../../workers/repomirrorworker/index.ts';
import { createMirrorRepo, localTags, startMirrorRegistry, syncNow, testSettings } from '../../workers/repomirrorworker/test-support.ts';
import { loadLine, printResult } from '../report.ts';

console.log(loadLine('before'));

const run = promisify(execFile);
const MiB = 1024 * 1024;
const TAGS = Number(process.env.BENCH_TAGS ?? 50);
const BIG_MIB = Number(process.env.BENCH_BIG_MIB ?? 256);
const UPSTREAM_PORT = 15648;
const PEER_PORT = 15647;
const REPO = 'library/bench';

/** Blob bytes the upstream served (200 answers to blob GETs), from its access log. */
const served = { blobs: 0 };
function countAccess(line: string): void {
  const match = /"GET (\S+) HTTP\/[\d.]+" (\d{3}) (\d+)/.exec(line);
  if (match && match[2] === '200' && match[1]!.includes('/blobs/')) served.blobs += Number(match[3]);
}

function layerBlob(layout: OciLayout, bytes: number) {
  return layout.writeBlob(randomBytes(bytes), 'application/vnd.oci.image.layer.v1.tar+gzip')
    .then((blob) => ({ ...blob, diffId: blob.digest })); // random bytes, not a tarball: nothing here unpacks it
}

async function populate(upstream: Distribution, work: string): Promise<void> {
  const dir = path.join(work, 'layout');
  const layout = await OciLayout.create(dir);
  const base = [];
  for (let i = 0; i < 3; i++) base.push(await layerBlob(layout, 8 * MiB));
  const refs: string[] = [];
  for (let i = 0; i < TAGS; i++) {
    const own = await layerBlob(layout, 512 * 1024);
    const manifest = await layout.writeImage([...base, own]);
    await layout.tag(manifest, `t${i}`);
    refs.push(`t${i}`);
  }
  const chunks: Buffer[] = [];
  for (let left = BIG_MIB * MiB; left > 0; left -= 64 * MiB) chunks.push(randomBytes(Math.min(64 * MiB, left)));
  const bigBytes = Buffer.concat(chunks);
  const big = await layout.writeBlob(bigBytes, 'application/vnd.oci.image.layer.v1.tar+gzip');
  await layout.tag(await layout.writeImage([{ ...big, diffId: big.digest }]), 'big');
  for (let i = 0; i < refs.length; i += 5) {
    await Promise.all(refs.slice(i, i + 5).map((ref) => upstream.push(dir, ref, REPO, ref)));
  }
  await upstream.push(dir, 'big', REPO, 'big');
}

async function blobBytesUpstream(upstream: Distribution): Promise<number> {
  // Every blob of the repository, counted once: what a perfect mirror pulls.
  let total = 0;
  const root = path.join(upstream.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256');
  for (const prefix of await fs.readdir(root)) {
    for (const digest of await fs.readdir(path.join(root, prefix))) total += (await fs.stat(path.join(root, prefix, digest, 'data'))).size;
  }
  return total;
}

// The access log reaches this process through a pipe, a moment after the response (untimed).
const logSettled = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 300));

/** Samples this process's RSS every 20 ms: `stop` returns the growth over the start, `peak` the highest RSS seen. */
function rssSampler(): { stop(): number; readonly peak: number } {
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  return { stop: () => { clearInterval(timer); return Math.max(0, peak - start); }, get peak() { return peak; } };
}

// Every store on tmpfs (BENCH_TMPDIR to choose): the upstream's, the peer's and quayfleet's
// LocalStorage. LocalStorage fsyncs each object before publishing it and distribution's filesystem
// driver never does, so on a disk the figure would time the disk's flushes, not the copy engines
// (quayfleet's production stores are object stores). Postgres stays where it is (fsync on).
process.env.TMPDIR = process.env.BENCH_TMPDIR ?? '/dev/shm';
await preparePostgresTemplate();
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'quayfleet-bench-mirror-'));
const upstream = await startDistribution(UPSTREAM_PORT, { dir: await fs.mkdtemp(path.join(work, 'up-')), onAccess: countAccess });
const peer = await startDistribution(PEER_PORT, { dir: await fs.mkdtemp(path.join(work, 'peer-')) });
const reg = await startMirrorRegistry();
try {
  const setupStart = performance.now();
  await populate(upstream, work);
  const uniqueBlobBytes = await blobBytesUpstream(upstream);
  served.blobs = 0;
  console.log(`upstream: ${TAGS} tags + big (${BIG_MIB} MiB), ${(uniqueBlobBytes / MiB).toFixed(1)} MiB of unique blobs, set up in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);

  const external = `${upstream.authority}/${REPO}`;
  const loadBefore = os.loadavg();
  // The worker's defaults (a worker process of one sync).
  const { perWorkerLimit, ...defaults } = DEFAULT_SYNC_SETTINGS;
  const settings = testSettings({ ...defaults, perWorker: new Semaphore(perWorkerLimit) });
  const id = await createMirrorRepo(reg, 'bench', { external, patterns: ['t*'], registryConfig: { verify_tls: false } });
  let rss = rssSampler();
  let t0 = performance.now();
  const first = await syncNow(reg, id, settings);
  const quayfleetS = (performance.now() - t0) / 1000;
  const smallRss = rss.stop();
  const smallPeakRss = rss.peak;
  if (first !== 'SUCCESS' || Object.keys(await localTags(reg, id)).length !== TAGS) throw new Error(`quayfleet sync ended ${first}`);
  await logSettled();
  const tagBytes = served.blobs;

  await reg.db.query(`UPDATE repomirrorrule SET rule_value = '["t*", "big"]' WHERE repository_id = $1`, [id]);
  await reg.db.query(`UPDATE repomirrorconfig SET sync_start_date = now() - interval '1 second' WHERE repository_id = $1`, [id]);
  rss = rssSampler();
  t0 = performance.now();
  if (await syncNow(reg, id, settings) !== 'SUCCESS') throw new Error('big sync failed');
  const bigS = (performance.now() - t0) / 1000;
  const bigRss = rss.stop();
  const bigPeakRss = rss.peak;
  await logSettled();
  const pulledBytes = served.blobs;
  console.log(`quayfleet: ${TAGS} tags in ${quayfleetS.toFixed(2)} s (${(tagBytes / MiB).toFixed(1)} MiB pulled, RSS +${(smallRss / MiB).toFixed(0)} MiB); big tag in ${bigS.toFixed(2)} s (RSS +${(bigRss / MiB).toFixed(0)} MiB, peak ${(bigPeakRss / MiB).toFixed(0)} MiB)`);

  await reg.db.query(`UPDATE repomirrorconfig SET sync_start_date = now() - interval '1 second' WHERE repository_id = $1`, [id]);
  t0 = performance.now();
  await syncNow(reg, id, settings);
  const resyncS = (performance.now() - t0) / 1000;
  const copy = await createMirrorRepo(reg, 'bench-copy', { external, patterns: ['t*'], registryConfig: { verify_tls: false } });
  const before = served.blobs;
  t0 = performance.now();
  await syncNow(reg, copy, settings);
  const heldS = (performance.now() - t0) / 1000;
  await logSettled();
  const heldBytes = served.blobs - before;
  console.log(`quayfleet: unchanged re-sync ${resyncS.toFixed(2)} s; second repository of the same upstream ${heldS.toFixed(2)} s with ${heldBytes} blob bytes pulled`);

  t0 = performance.now();
  await run('skopeo', ['sync', '--src', 'docker', '--dest', 'docker', '--src-tls-verify=false', '--dest-tls-verify=false', external, `${peer.authority}/mirror`],
    { maxBuffer: 64 * MiB });
  const skopeoAllS = (performance.now() - t0) / 1000;
  console.log(`skopeo sync: ${TAGS} tags + big in ${skopeoAllS.toFixed(2)} s`);

  const quayfleetAllS = quayfleetS + bigS;
  const result = {
    bench: 'mirror', tags: TAGS, bigLayerMiB: BIG_MIB, storageDir: os.tmpdir(), loadAverageBefore: loadBefore, loadAverage: os.loadavg(),
    quayfleetSeconds: +quayfleetAllS.toFixed(2), skopeoSyncSeconds: +skopeoAllS.toFixed(2),
    ratio: +(skopeoAllS / quayfleetAllS).toFixed(2),
    bytesPulledOverUnique: +(pulledBytes / uniqueBlobBytes).toFixed(3),
    unchangedResyncSeconds: +resyncS.toFixed(2), secondRepositorySeconds: +heldS.toFixed(2), secondRepositoryBlobBytesPulled: heldBytes,
    rssGrowthMiB: { tags: +(smallRss / MiB).toFixed(1), bigLayer: +(bigRss / MiB).toFixed(1) },
    peakRssMiB: { tags: +(smallPeakRss / MiB).toFixed(1), bigLayer: +(bigPeakRss / MiB).toFixed(1) },
  };
  printResult(result);
} finally {
  await Promise.allSettled([upstream.stop(), peer.stop(), reg.close()]);
  await fs.rm(work, { recursive: true, force: true });
}
