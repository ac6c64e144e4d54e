/**
 * Quota tests at the database level: rows built directly, manifests pushed through the same
 * transaction shape as the front end's manifest PUT (manifest, blob links, the quota hook, the
 * tag), and GC through the real collection code. For tests through HTTP see push-support.ts.
 */
import { randomBytes } from 'node:crypto';
import { parseConfig, type Config } from '../../shared/config/index.ts';
import { collectRepository } from '../../shared/db/gc/collect.ts';
import { insertManifest, linkManifestBlobs } from '../../shared/db/manifests.ts';
import { withTransaction, type Pool } from '../../shared/db/pool.ts';
import { onManifestBlobsAdded } from '../../shared/db/quota-hook.ts';
import { endTag, setTag } from '../../shared/db/tags.ts';

/** A quota-enabled config, with `extra` Quay keys merged in. */
export function quotaConfig(extra: Record<string, unknown> = {}): Config {
  return parseConfig({ FEATURE_QUOTA_MANAGEMENT: true, QUOTA_TOTAL_DELAY_SECONDS: 0, ...extra });
}

/** Creates an organization namespace with no time machine (GC collects ended tags at once). */
export async function createNamespace(pool: Pool, name: string): Promise<number> {
  const { rows } = await pool.query<{ id: number }>(
    `INSERT INTO namespace (username, organization, removed_tag_expiration_s) VALUES ($1, true, 0) RETURNING id`, [name]);
  return rows[0]!.id;
}

/** Creates repository `name` in `namespaceId`. */
export async function createRepo(pool: Pool, namespaceId: number, name: string): Promise<number> {
  const { rows } = await pool.query<{ id: number }>(`INSERT INTO repository (namespace_user_id, name) VALUES ($1, $2) RETURNING id`, [namespaceId, name]);
  return rows[0]!.id;
}

/** A blob row (no storage object: accounting never reads bytes). */
export interface Blob {
  readonly id: number;
  readonly size: number;
}

/** Inserts a blob row of `size` bytes. */
export async function createBlob(pool: Pool, size: number): Promise<Blob> {
  const { rows } = await pool.query<{ id: number }>(
    `INSERT INTO imagestorage (content_checksum, image_size) VALUES ($1, $2) RETURNING id`, [`sha256:${randomBytes(32).toString('hex')}`, size]);
  return { id: rows[0]!.id, size };
}

/** Pushes a new manifest linking `blobs` into `repositoryId` (tagged `tag` when given), like the manifest PUT; `holdMs` delays its commit. */
export async function pushManifest(
  pool: Pool, config: Config, target: { namespaceId: number; repositoryId: number }, blobs: readonly Blob[], tag?: string,
  options: { holdMs?: number } = {},
): Promise<number> {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, nonce: randomBytes(8).toString('hex') }));
  return withTransaction(pool, async (tx) => {
    const { id, created } = await insertManifest(tx, {
      repositoryId: target.repositoryId, digest: `sha256:${randomBytes(32).toString('hex')}`, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      bytes, configMediaType: null, artifactType: null, subject: null, layersCompressedSize: 0,
    });
    await linkManifestBlobs(tx, target.repositoryId, id, blobs.map((b) => b.id));
    await onManifestBlobsAdded(tx, { ...target, manifestId: id, manifestCreated: created, tagged: tag !== undefined, blobs }, config);
    if (tag !== undefined) await setTag(tx, { repositoryId: target.repositoryId, name: tag, manifestId: id, nowMs: Date.now() });
    // A slow rest of the push (tag, log, outbox): the window in which it is linked but not committed.
    if (options.holdMs) await new Promise((resolve) => setTimeout(resolve, options.holdMs));
    return id;
  });
}

/** Ends tag `tag` of `repositoryId` now. */
export async function deleteTag(pool: Pool, repositoryId: number, tag: string): Promise<void> {
  await withTransaction(pool, (tx) => endTag(tx, { repositoryId, name: tag, nowMs: Date.now() }));
}

/** Runs GC's row collection on `repositoryId` (tags ended before now are past the zero-length time machine). */
export async function collect(pool: Pool, repositoryId: number): Promise<void> {
  await collectRepository(pool, repositoryId, { nowMs: Date.now() + 1000 });
}

/** The namespace total row, or undefined. */
export async function namespaceTotal(pool: Pool, namespaceId: number): Promise<{ size: number; complete: boolean } | undefined> {
  const { rows } = await pool.query<{ size: number; complete: boolean }>(
    `SELECT size_bytes AS size, backfill_complete AS complete FROM quotanamespacesize WHERE namespace_user_id = $1`, [namespaceId]);
  return rows[0];
}

/** The repository total row, or undefined. */
export async function repositoryTotal(pool: Pool, repositoryId: number): Promise<{ size: number; complete: boolean } | undefined> {
  const { rows } = await pool.query<{ size: number; complete: boolean }>(
    `SELECT size_bytes AS size, backfill_complete AS complete FROM quotarepositorysize WHERE repository_id = $1`, [repositoryId]);
  return rows[0];
}

/** Sum of sizes. */
export function bytes(...blobs: Blob[]): number {
  return blobs.reduce((sum, b) => sum + b.size, 0);
}
