/**
 * The registry benchmark's long-push mode (BENCH_PUSH_GIB): pushes that many GiB into quayfleet
 * as images of BENCH_PUSH_LAYERS layers of BENCH_PUSH_LAYER_MIB each (default 4 × 64 MiB, the
 * layers of an image uploaded at once, as skopeo does), every layer's bytes unique, while the
 * server's RSS is sampled every second. It answers "does the registry's memory stay flat however
 * much is pushed": first, last and peak RSS, and the slope of RSS over GiB pushed (least squares,
 * MiB per GiB) over the whole run and after the first GiB (warm-up: V8's heap and glibc's arenas
 * grow to their working size first).
 *
 * The client is this file's own (POST, one PATCH with a Content-Length, PUT ?digest=, then the
 * manifest), not skopeo: skopeo would mount or skip a blob it has pushed before, so 10 GiB of
 * skopeo pushes would need 10 GiB of distinct layers on disk first.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { BenchServer } from './servers.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** One RSS sample: MiB resident, GiB pushed (completed layers) so far, seconds since the start. */
export interface RssSample { readonly seconds: number; readonly pushedGiB: number; readonly rssMiB: number }

export interface LongPushResult {
  readonly pushedGiB: number;
  readonly images: number;
  readonly seconds: number;
  readonly MBps: number;
  readonly firstRssMiB: number;
  readonly lastRssMiB: number;
  /** The highest sample, and the kernel's own high-water mark (VmHWM), which sees between samples. */
  readonly peakRssMiB: number;
  readonly vmHwmMiB: number;
  /** Least-squares slope of RSS over GiB pushed: the whole run, and after the first GiB. */
  readonly slopeMiBPerGiB: number;
  readonly slopeAfterFirstGiBMiBPerGiB: number;
  readonly samples: number;
}

/** Current resident set of `pid` in MiB (VmRSS). */
export async function rssMiB(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

function slope(points: RssSample[]): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.pushedGiB, 0) / n;
  const my = points.reduce((s, p) => s + p.rssMiB, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.pushedGiB - mx) * (p.rssMiB - my);
    den += (p.pushedGiB - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** A push token for `repository` (Docker token auth with the server's credentials). */
async function pushToken(server: BenchServer, repository: string): Promise<string> {
  const { username, password } = server.credentials!;
  const response = await fetch(`${server.base}/v2/auth?service=${new URL(server.base).host}&scope=repository:${repository}:push,pull`, {
    headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` },
  });
  if (!response.ok) throw new Error(`token for ${repository}: ${response.status}`);
  return ((await response.json()) as { token: string }).token;
}

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string }

/** One request; `write` streams the body (with backpressure) when given. */
function request(agent: http.Agent, url: URL, method: string, headers: Record<string, string | number>, write?: (req: http.ClientRequest) => Promise<void>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    if (!write) return void req.end();
    write(req).then(() => req.end(), reject);
  });
}

const expect = (answer: Answer, status: number, what: string): Answer => {
  if (answer.status !== status) throw new Error(`${what} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
  return answer;
};

/**
 * Uploads one blob of `bytes`: a unique 32-byte head then `filler` repeated (the bytes differ per
 * blob, so nothing is deduplicated, without generating GiBs of randomness). Returns its digest.
 */
async function pushBlob(agent: http.Agent, base: string, repository: string, auth: string, bytes: number, filler: Buffer, onBytes: (n: number) => void): Promise<string> {
  const started = expect(await request(agent, new URL(`/v2/${repository}/blobs/uploads/`, base), 'POST', { authorization: auth, 'content-length': 0 }), 202, 'upload start');
  const location = new URL(started.headers.location!, base);
  const hash = createHash('sha256');
  const head = randomBytes(32);
  const patched = expect(await request(agent, location, 'PATCH', { authorization: auth, 'content-type': 'application/octet-stream', 'content-length': bytes }, async (req) => {
    let left = bytes;
    let chunk: Buffer = head;
    while (left > 0) {
      const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
      hash.update(piece);
      left -= piece.length;
      onBytes(piece.length);
      if (!req.write(piece)) await new Promise((resolve) => req.once('drain', resolve));
      chunk = filler;
    }
  }), 202, 'upload PATCH');
  const digest = `sha256:${hash.digest('hex')}`;
  const done = new URL(patched.headers.location!, base);
  done.searchParams.set('digest', digest);
  expect(await request(agent, done, 'PUT', { authorization: auth, 'content-length': 0 }), 201, 'upload PUT');
  return digest;
}

/** A small blob in one POST ?digest= (monolithic upload). */
async function pushSmallBlob(agent: http.Agent, base: string, repository: string, auth: string, body: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const started = expect(await request(agent, new URL(`/v2/${repository}/blobs/uploads/`, base), 'POST', { authorization: auth, 'content-length': 0 }), 202, 'config upload start');
  const put = new URL(started.headers.location!, base);
  put.searchParams.set('digest', digest);
  expect(await request(agent, put, 'PUT', { authorization: auth, 'content-type': 'application/octet-stream', 'content-length': body.length }, async (req) => void req.write(body)), 201, 'config upload PUT');
  return digest;
}

/** Pushes `totalBytes` into `server` as images of `layers` × `layerBytes`, sampling the RSS of `pid`. */
export async function longPush(server: BenchServer, pid: number, totalBytes: number, layers: number, layerBytes: number, log: (line: string) => void): Promise<LongPushResult> {
  const repository = 'bench/longpush';
  const agent = new http.Agent({ keepAlive: true, maxSockets: layers + 1 });
  const filler = randomBytes(MiB);
  const samples: RssSample[] = [];
  let pushed = 0; // bytes of completed layers
  let written = 0; // bytes handed to the sockets
  const started = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9;
  const sample = async (): Promise<void> => {
    samples.push({ seconds: elapsed(), pushedGiB: pushed / GiB, rssMiB: await rssMiB(pid) });
  };
  await sample();
  const timer = setInterval(() => void sample().catch(() => undefined), 1000);
  let images = 0;
  let lastLoggedGiB = 0;
  try {
    while (pushed < totalBytes) {
      const auth = `Bearer ${await pushToken(server, repository)}`;
      const digests = await Promise.all(Array.from({ length: layers }, async () => {
        const digest = await pushBlob(agent, server.base, repository, auth, layerBytes, filler, (n) => (written += n));
        pushed += layerBytes;
        return digest;
      }));
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: digests } }));
      const configDigest = await pushSmallBlob(agent, server.base, repository, auth, config);
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: digests.map((digest) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: layerBytes })),
      }));
      expect(await request(agent, new URL(`/v2/${repository}/manifests/i${images}`, server.base), 'PUT', {
        authorization: auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': manifest.length,
      }, async (req) => void req.write(manifest)), 201, 'manifest PUT');
      images++;
      if (pushed / GiB >= lastLoggedGiB + 1) {
        lastLoggedGiB = Math.floor(pushed / GiB);
        log(`  ${lastLoggedGiB} GiB pushed in ${elapsed().toFixed(0)} s, RSS ${samples.at(-1)!.rssMiB.toFixed(0)} MiB`);
      }
    }
  } finally {
    clearInterval(timer);
    agent.destroy();
  }
  await sample();
  const seconds = elapsed();
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const afterFirst = samples.filter((s) => s.pushedGiB >= 1);
  return {
    pushedGiB: pushed / GiB, images, seconds, MBps: pushed / 1e6 / seconds, samples: samples.length,
    firstRssMiB: samples[0]!.rssMiB, lastRssMiB: samples.at(-1)!.rssMiB,
    peakRssMiB: Math.max(...samples.map((s) => s.rssMiB)),
    vmHwmMiB: Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024,
    slopeMiBPerGiB: slope(samples), slopeAfterFirstGiBMiBPerGiB: slope(afterFirst),
  };
}
