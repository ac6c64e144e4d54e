/**
 * Benchmark: quayfleet's OCI front end against the CNCF distribution registry (Debian's
 * docker-registry 2.8, filesystem storage), same machine, same clients:
 * - push and pull of a 256 MiB image (4 random 64 MiB layers) with skopeo from/to an OCI layout;
 * - 10 000 GETs of a small manifest by tag at 32 concurrent keep-alive connections.
 * Reports MB/s, requests/s, p50/p99 latency, peak RSS and CPU used per MiB and per request of
 * each server, and quayfleet/distribution ratios (> 1 means quayfleet is better; for latency, RSS
 * and CPU the ratio is distribution's over ours). Throughput ratios depend on the machine's load
 * (the kernel shares a busy CPU per thread: Go's threads get more of it than Node's one); CPU per
 * unit of work does not.
 *
 * Both servers run for the whole benchmark and the measurements alternate between them (push and
 * pull rounds, manifest GETs in slices), so load from other processes on a shared machine hits
 * both sides alike. Push and pull figures are the median over the rounds.
 *
 * quayfleet runs as a registry pod does: `quayfleet registry` from the compiled build (built first
 * when dist/ is missing or stale), with Postgres, Redis and its metrics server.
 *
 * Env: BENCH_SCALE (image size and request count scale, default 1), BENCH_ROUNDS (push/pull
 * rounds, default 3), BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * BENCH_TMPDIR (where both servers store blobs and the OCI layout lives; default the OS temp dir:
 * on a disk LocalStorage's fsync of every blob is timed, which distribution never does; /dev/shm
 * leaves the engines), BENCH_PROFILE_DIR (CPU profile of the quayfleet server), BENCH_PORT (default 15000: distribution
 * there, quayfleet on the next port, its metrics on the one after). The last line printed is one JSON object; when distribution fails it
 * has no ratio.
 *
 * BENCH_PUSH_GIB=10 runs the long-push mode instead (long-push.ts): quayfleet alone, that many GiB
 * pushed as images of BENCH_PUSH_LAYERS (4) × BENCH_PUSH_LAYER_MIB (64) while its RSS is sampled
 * every second; it reports first, last and peak RSS and the slope in MiB per GiB pushed.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OciLayout } from '../../test/fixtures/oci/layout.ts';
import { loadLine, printFailure, printResult, runPeer } from '../report.ts';
import { getMany, pullToken, skopeoCopy } from './load.ts';
import { longPush } from './long-push.ts';
import { startDistribution, startQuayfleet, type BenchServer } from './servers.ts';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const MiB = 1024 * 1024;
const LAYER_BYTES = Math.max(1, Math.round(64 * SCALE)) * MiB;
const LAYERS = 4;
const REQUESTS = Math.max(1000, Math.round(10_000 * SCALE));
const SLICES = 10;
const CONCURRENCY = 32;
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** distribution on PORT, quayfleet on PORT + 1, its metrics on PORT + 2 (BENCH_PORT, default 15000). */
const PORT = Number(process.env.BENCH_PORT ?? 15000);

/** What one server achieved. */
interface SideResult {
  pushMBps: number;
  pullMBps: number;
  manifestRequestsPerSecond: number;
  manifestP50Ms: number;
  manifestP99Ms: number;
  peakRssBytes: number;
  /** Server CPU (user + system) per MiB pushed and pulled, and per manifest GET. */
  pushCpuMsPerMiB: number;
  pullCpuMsPerMiB: number;
  manifestCpuUsPerRequest: number;
}

/**
 * Builds the OCI layout: per round an image of its own random layers (`big<round>`: skopeo
 * remembers where it pushed a blob and would mount it instead of uploading it again), and a small
 * image for the manifest GETs.
 */
async function buildLayout(dir: string): Promise<void> {
  const layout = await OciLayout.create(dir);
  for (let round = 0; round < ROUNDS; round++) {
    const layers = [];
    for (let i = 0; i < LAYERS; i++) {
      const blob = await layout.writeBlob(randomBytes(LAYER_BYTES), 'application/vnd.oci.image.layer.v1.tar+gzip');
      layers.push({ ...blob, diffId: blob.digest }); // random bytes, not a real tarball: nothing here unpacks it
    }
    await layout.tag(await layout.writeImage(layers), `big${round}`);
  }
  await layout.tag(await layout.writeImage([await layout.writeLayer('small.txt', randomBytes(1024))]), 'small');
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const hostOf = (server: BenchServer): string => new URL(server.base).host;
/** Runs `fn` for `server`; a failure on distribution's side is the peer's (no ratio reported). */
const on = <T>(server: BenchServer, fn: () => Promise<T>): Promise<T> => (server.name === 'distribution' ? runPeer('distribution', fn) : fn());

/** Push and pull rounds, alternating which server goes first; MB/s per round and server. */
async function imageRounds(servers: BenchServer[], layoutDir: string, work: string): Promise<Map<string, { push: number[]; pull: number[]; pushCpu: number; pullCpu: number }>> {
  const mb = (LAYER_BYTES * LAYERS) / MiB;
  const figures = new Map(servers.map((s) => [s.name, { push: [] as number[], pull: [] as number[], pushCpu: 0, pullCpu: 0 }]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    for (const server of order) {
      const target = `docker://${hostOf(server)}/bench/big${round}:v1`;
      const cpu = await server.cpuSeconds();
      figures.get(server.name)!.push.push(mb / (await on(server, () => skopeoCopy(server, `oci:${layoutDir}:big${round}`, target))));
      figures.get(server.name)!.pushCpu += (await server.cpuSeconds()) - cpu;
    }
    for (const server of order) {
      const pullDir = path.join(work, `pull-${server.name}-${round}`);
      const cpu = await server.cpuSeconds();
      figures.get(server.name)!.pull.push(mb / (await on(server, () => skopeoCopy(server, `docker://${hostOf(server)}/bench/big${round}:v1`, `oci:${pullDir}:v1`))));
      figures.get(server.name)!.pullCpu += (await server.cpuSeconds()) - cpu;
      await fs.rm(pullDir, { recursive: true, force: true });
    }
  }
  return figures;
}

/** Manifest GETs in alternating slices; requests/s and latency quantiles per server. */
async function manifestLoad(servers: BenchServer[], layoutDir: string): Promise<Map<string, { rps: number; p50: number; p99: number; cpuSeconds: number }>> {
  const targets = [];
  for (const server of servers) {
    await on(server, () => skopeoCopy(server, `oci:${layoutDir}:small`, `docker://${hostOf(server)}/bench/small:v1`));
    const token = await pullToken(server, 'bench/small');
    const headers: Record<string, string> = { accept: 'application/vnd.oci.image.manifest.v1+json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
    await on(server, () => getMany(server.base, '/v2/bench/small/manifests/v1', headers, 500, CONCURRENCY)); // warm-up
    targets.push({ server, headers, latencies: [] as number[], seconds: 0, cpuSeconds: 0 });
  }
  for (let slice = 0; slice < SLICES; slice++) {
    for (const target of slice % 2 === 0 ? targets : [...targets].reverse()) {
      const cpu = await target.server.cpuSeconds();
      const run = await on(target.server, () => getMany(target.server.base, '/v2/bench/small/manifests/v1', target.headers, REQUESTS / SLICES, CONCURRENCY));
      target.cpuSeconds += (await target.server.cpuSeconds()) - cpu;
      target.latencies.push(...run.latenciesMs);
      target.seconds += run.seconds;
    }
  }
  return new Map(targets.map((t) => {
    const sorted = t.latencies.sort((a, b) => a - b);
    return [t.server.name, { rps: sorted.length / t.seconds, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), cpuSeconds: t.cpuSeconds }];
  }));
}

function summary(name: string, r: SideResult): string {
  return `${name.padEnd(13)} push ${r.pushMBps.toFixed(1)} MB/s, pull ${r.pullMBps.toFixed(1)} MB/s, manifest GET ${r.manifestRequestsPerSecond.toFixed(0)} req/s `
    + `p50 ${r.manifestP50Ms.toFixed(2)} ms p99 ${r.manifestP99Ms.toFixed(2)} ms, peak RSS ${(r.peakRssBytes / MiB).toFixed(0)} MiB; `
    + `CPU: push ${r.pushCpuMsPerMiB.toFixed(1)} ms/MiB, pull ${r.pullCpuMsPerMiB.toFixed(1)} ms/MiB, manifest GET ${r.manifestCpuUsPerRequest.toFixed(0)} µs/request`;
}

/** The long-push mode: quayfleet alone, BENCH_PUSH_GIB GiB pushed, RSS sampled every second. */
async function runLongPush(gib: number): Promise<void> {
  console.log(loadLine('before'));
  const work = await fs.mkdtemp(path.join(process.env.BENCH_TMPDIR ?? os.tmpdir(), 'quayfleet-bench-longpush-'));
  let server: BenchServer | undefined;
  try {
    server = await startQuayfleet(work, PORT + 1, POSTGRES_URL, PORT + 2);
    const layers = Number(process.env.BENCH_PUSH_LAYERS ?? 4);
    const layerMiB = Number(process.env.BENCH_PUSH_LAYER_MIB ?? 64);
    const result = await longPush(server, server.pid, Math.round(gib * 1024) * MiB, layers, layerMiB * MiB, (line) => console.log(line));
    console.log(`quayfleet pushed ${result.pushedGiB.toFixed(1)} GiB (${result.images} images of ${layers} × ${layerMiB} MiB) in ${result.seconds.toFixed(0)} s, ${result.MBps.toFixed(1)} MB/s; `
      + `RSS first ${result.firstRssMiB.toFixed(0)} MiB, last ${result.lastRssMiB.toFixed(0)}, peak ${result.peakRssMiB.toFixed(0)} (VmHWM ${result.vmHwmMiB.toFixed(0)}); `
      + `slope ${result.slopeMiBPerGiB.toFixed(2)} MiB/GiB (after the first GiB ${result.slopeAfterFirstGiBMiBPerGiB.toFixed(2)})`);
    printResult({ benchmark: 'registry-long-push', layers, layerBytes: layerMiB * MiB, quayfleet: result, ratio: null });
  } catch (error) {
    printFailure('registry-long-push', error);
  } finally {
    await server?.stop();
    await fs.rm(work, { recursive: true, force: true });
  }
}

const PUSH_GIB = Number(process.env.BENCH_PUSH_GIB ?? 0);
if (PUSH_GIB > 0) {
  await runLongPush(PUSH_GIB);
  process.exit();
}

console.log(loadLine('before'));
const work = await fs.mkdtemp(path.join(process.env.BENCH_TMPDIR ?? os.tmpdir(), 'quayfleet-bench-registry-'));
const servers: BenchServer[] = [];
try {
  const layoutDir = path.join(work, 'layout');
  await buildLayout(layoutDir);
  for (const name of ['distribution', 'quayfleet']) await fs.mkdir(path.join(work, name));
  servers.push(await runPeer('distribution', () => startDistribution(path.join(work, 'distribution'), PORT)));
  servers.push(await startQuayfleet(path.join(work, 'quayfleet'), PORT + 1, POSTGRES_URL, PORT + 2));
  const images = await imageRounds(servers, layoutDir, work);
  const manifests = await manifestLoad(servers, layoutDir);
  const results: Record<string, SideResult> = {};
  const imageMiB = (LAYER_BYTES * LAYERS) / MiB;
  for (const server of servers) {
    const image = images.get(server.name)!;
    const load = manifests.get(server.name)!;
    results[server.name] = {
      pushMBps: median(image.push), pullMBps: median(image.pull),
      manifestRequestsPerSecond: load.rps, manifestP50Ms: load.p50, manifestP99Ms: load.p99, peakRssBytes: await server.peakRss(),
      pushCpuMsPerMiB: (1000 * image.pushCpu) / (ROUNDS * imageMiB), pullCpuMsPerMiB: (1000 * image.pullCpu) / (ROUNDS * imageMiB),
      manifestCpuUsPerRequest: (1e6 * load.cpuSeconds) / REQUESTS,
    };
    console.log(summary(server.name, results[server.name]!));
  }
  const ours = results.quayfleet!;
  const peer = results.distribution!;
  const ratio = {
    pushMBps: ours.pushMBps / peer.pushMBps,
    pullMBps: ours.pullMBps / peer.pullMBps,
    manifestRequestsPerSecond: ours.manifestRequestsPerSecond / peer.manifestRequestsPerSecond,
    manifestP50: peer.manifestP50Ms / ours.manifestP50Ms,
    manifestP99: peer.manifestP99Ms / ours.manifestP99Ms,
    peakRss: peer.peakRssBytes / ours.peakRssBytes,
    pushCpu: peer.pushCpuMsPerMiB / ours.pushCpuMsPerMiB,
    pullCpu: peer.pullCpuMsPerMiB / ours.pullCpuMsPerMiB,
    manifestCpu: peer.manifestCpuUsPerRequest / ours.manifestCpuUsPerRequest,
  };
  console.log(`ratios (quayfleet/distribution, >1 = quayfleet better): ${Object.entries(ratio).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
  printResult({
    benchmark: 'registry', scale: SCALE, rounds: ROUNDS, imageBytes: LAYER_BYTES * LAYERS, requests: REQUESTS, concurrency: CONCURRENCY,
    quayfleet: ours, distribution: peer, ratio,
  });
} catch (error) {
  printFailure('registry', error);
} finally {
  for (const server of servers) await server.stop();
  await fs.rm(work, { recursive: true, force: true });
}
