/**
 * Manifest PUT latency with quota on and off: two front ends over their own databases, the same
 * pushes alternating between them (first one side, then the other, swapped every push) so load
 * from elsewhere on the machine hits both alike. Only the manifest PUT is timed.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { imageManifest, V2Client, type BuiltManifest } from '../../registry/v2/test-support.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const WARMUP = 100;
const LAYERS = Array.from({ length: 20 }, () => randomBytes(4096));
const OWNER: [string, string] = ['pusher', 'pusherpass1'];

interface Side {
  readonly registry: TestRegistry;
  readonly client: V2Client;
  readonly samples: number[];
}

/** Percentiles of one side, in ms. */
export interface Latency {
  readonly p50: number;
  readonly p99: number;
}

async function startSide(label: string, quota: boolean): Promise<Side> {
  const registry = await startTestRegistry({ label, config: { FEATURE_QUOTA_MANAGEMENT: quota, QUOTA_TOTAL_DELAY_SECONDS: 0 } });
  await registry.createUser(...OWNER);
  await registry.createUser('root', 'rootpass12', { superuser: true });
  await registry.createOrganization('bench', OWNER[0]);
  if (quota) {
    // A quota that is never reached: every push is checked against limits and passes.
    const as: [string, string] = ['root', 'rootpass12'];
    await registry.api('POST', '/organization/bench/quota', { as, body: { limit_bytes: 2 ** 40 } });
    const { id } = ((await registry.api('GET', '/organization/bench/quota', { as })).json() as { id: number }[])[0]!;
    await registry.api('POST', `/organization/bench/quota/${id}/limit`, { as, body: { type: 'Warning', threshold_percent: 80 } });
    await registry.api('POST', `/organization/bench/quota/${id}/limit`, { as, body: { type: 'Reject', threshold_percent: 95 } });
  }
  const client = new V2Client(registry.app, await registry.tokenFor(OWNER[0], OWNER[1], ['repository:bench/app:push,pull']));
  for (const layer of LAYERS) await client.uploadBlob('bench/app', layer, 'monolithic');
  return { registry, client, samples: [] };
}

/** Uploads the config blob of every push to both sides, then builds the manifests. */
async function prepare(sides: Side[], count: number): Promise<BuiltManifest[]> {
  const manifests: BuiltManifest[] = [];
  for (let i = 0; i < count; i++) {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
    for (const side of sides) await side.client.uploadBlob('bench/app', config, 'monolithic');
    manifests.push(imageManifest(config, [0, 1, 2].map((k) => LAYERS[(i * 7 + k * 3) % LAYERS.length]!)));
  }
  return manifests;
}

async function timedPut(side: Side, manifest: BuiltManifest, tag: string, record: boolean): Promise<void> {
  const started = performance.now();
  const response = await side.client.putManifest('bench/app', manifest, tag);
  const elapsed = performance.now() - started;
  if (response.statusCode !== 201) throw new Error(`manifest PUT answered ${response.statusCode}: ${response.body}`);
  if (record) side.samples.push(elapsed);
}

function percentiles(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

/** Runs `count` timed tag pushes per side; returns both sides' percentiles and their differences. */
export async function measurePushes(count: number): Promise<{ off: Latency; on: Latency; addedP50Ms: number; addedP99Ms: number }> {
  const off = await startSide('quotabenchoff', false);
  const on = await startSide('quotabenchon', true);
  try {
    const manifests = await prepare([off, on], count + WARMUP);
    for (let i = 0; i < manifests.length; i++) {
      const order = i % 2 === 0 ? [off, on] : [on, off];
      // Tags move among 50 names, as in a busy repository; each push ends the tag's previous row.
      for (const side of order) await timedPut(side, manifests[i]!, `t${i % 50}`, i >= WARMUP);
    }
    const offLatency = percentiles(off.samples);
    const onLatency = percentiles(on.samples);
    return { off: offLatency, on: onLatency, addedP50Ms: onLatency.p50 - offLatency.p50, addedP99Ms: onLatency.p99 - offLatency.p99 };
  } finally {
    await off.registry.close();
    await on.registry.close();
  }
}
