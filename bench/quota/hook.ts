/**
 * The quota step alone, timed inside the push transaction: the same transaction shape as the
 * manifest PUT (manifest, blob links, the quota hook, the tag), with only the hook call timed.
 * Quota on: a namespace with complete totals and a quota with Warning and Reject limits; quota
 * off: the hook's off path (QUOTA_INVALIDATE_TOTALS). End-to-end PUT percentiles on a busy machine
 * are dominated by everything else; this is the latency quota itself adds.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseConfig, type Config } from '../../shared/config/index.ts';
import { insertManifest, linkManifestBlobs } from '../../shared/db/manifests.ts';
import { withTransaction, type Pool } from '../../shared/db/pool.ts';
import { onManifestBlobsAdded } from '../../shared/db/quota-hook.ts';
import { setTag } from '../../shared/db/tags.ts';
import type { Latency } from './push.ts';

const WARMUP = 200;

interface Target {
  readonly config: Config;
  readonly namespaceId: number;
  readonly repositoryId: number;
  readonly samples: number[];
}

async function blob(pool: Pool, size: number): Promise<{ id: number; size: number }> {
  const { rows } = await pool.query<{ id: number }>(
    `INSERT INTO imagestorage (content_checksum, image_size) VALUES ($1, $2) RETURNING id`, [`sha256:${randomBytes(32).toString('hex')}`, size]);
  return { id: rows[0]!.id, size };
}

async function target(pool: Pool, name: string, quota: boolean): Promise<Target> {
  const { rows } = await pool.query<{ id: number }>(`INSERT INTO namespace (username, organization) VALUES ($1, true) RETURNING id`, [name]);
  const namespaceId = rows[0]!.id;
  const repo = await pool.query<{ id: number }>(`INSERT INTO repository (namespace_user_id, name) VALUES ($1, 'app') RETURNING id`, [namespaceId]);
  if (quota) {
    const q = await pool.query<{ id: number }>(`INSERT INTO userorganizationquota (namespace_id, limit_bytes) VALUES ($1, $2) RETURNING id`, [namespaceId, 2 ** 40]);
    await pool.query(`INSERT INTO quotalimits (quota_id, quota_type_id, percent_of_limit) SELECT $1, id, CASE name WHEN 'Warning' THEN 80 ELSE 95 END FROM quotatype`, [q.rows[0]!.id]);
  }
  return { config: parseConfig({ FEATURE_QUOTA_MANAGEMENT: quota }), namespaceId, repositoryId: repo.rows[0]!.id, samples: [] };
}

async function push(pool: Pool, t: Target, blobs: { id: number; size: number }[], tag: string, record: boolean): Promise<void> {
  await withTransaction(pool, async (tx) => {
    const bytes = Buffer.from(randomBytes(16).toString('hex'));
    const { id, created } = await insertManifest(tx, {
      repositoryId: t.repositoryId, digest: `sha256:${randomBytes(32).toString('hex')}`, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      bytes, configMediaType: null, artifactType: null, subject: null, layersCompressedSize: 0,
    });
    await linkManifestBlobs(tx, t.repositoryId, id, blobs.map((b) => b.id));
    const started = performance.now();
    await onManifestBlobsAdded(tx, { namespaceId: t.namespaceId, repositoryId: t.repositoryId, manifestId: id, manifestCreated: created, tagged: true, blobs }, t.config);
    if (record) t.samples.push(performance.now() - started);
    await setTag(tx, { repositoryId: t.repositoryId, name: tag, manifestId: id, nowMs: Date.now() });
  });
}

function percentiles(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

/** Times the quota hook of `count` pushes per side (on/off alternating) in database `pool`. */
export async function measureHook(pool: Pool, count: number): Promise<{ off: Latency; on: Latency }> {
  const on = await target(pool, 'hookon', true);
  const off = await target(pool, 'hookoff', false);
  const layers = await Promise.all(Array.from({ length: 20 }, () => blob(pool, 4096)));
  for (let i = 0; i < count + WARMUP; i++) {
    const order = i % 2 === 0 ? [on, off] : [off, on];
    for (const side of order) {
      const blobs = [await blob(pool, 300), ...[0, 1, 2].map((k) => layers[(i * 7 + k * 3) % layers.length]!)];
      await push(pool, side, blobs, `t${i % 50}`, i >= WARMUP);
    }
  }
  return { off: percentiles(off.samples), on: percentiles(on.samples) };
}
