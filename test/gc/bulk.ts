/**
 * Bulk registries for the purge-interruption test and the GC benchmark: a model of repositories,
 * manifests (real OCI image manifests, so a peer registry can parse them) and blobs, written
 * straight into quayfleet's tables with multi-row inserts and into a storage location as tiny
 * objects. A fraction of the manifests is garbage: untagged by a tag ended long before the window.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mapBounded } from '../../shared/storage/concurrency.ts';
import { blobKey } from '../../shared/storage/keys.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';
import type { Pool } from '../../shared/db/pool.ts';

/** One blob of the model (a config or a layer). */
export interface ModelBlob {
  readonly digest: string;
  readonly bytes: Buffer;
}

/** One manifest of the model. */
export interface ModelManifest {
  readonly digest: string;
  readonly bytes: Buffer;
  readonly blobs: ModelBlob[];
  /** Garbage: its only tag ended long before the time machine. */
  readonly garbage: boolean;
}

/** A repository of the model. */
export interface ModelRepository {
  readonly namespace: string;
  readonly name: string;
  readonly manifests: ModelManifest[];
}

/** The whole model. */
export interface RegistryModel {
  readonly repositories: ModelRepository[];
  readonly blobs: number;
  readonly garbageBlobs: number;
  readonly garbageBytes: number;
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * Builds a model: `manifests` manifests of `blobsPerManifest` unique blobs each (one config, the
 * rest layers), spread over `repositories` repositories in `namespaces` namespaces; every manifest
 * whose index falls in the `garbageFraction` is garbage.
 */
export function buildModel(options: { namespaces: number; repositories: number; manifests: number; blobsPerManifest: number; garbageFraction: number; prefix?: string }): RegistryModel {
  const repositories: ModelRepository[] = [];
  for (let r = 0; r < options.repositories; r++) {
    repositories.push({ namespace: `${options.prefix ?? 'bench'}${r % options.namespaces}`, name: `repo${r}`, manifests: [] });
  }
  let garbageBlobs = 0;
  let garbageBytes = 0;
  for (let i = 0; i < options.manifests; i++) {
    const repository = repositories[i % repositories.length]!;
    const blobs = Array.from({ length: options.blobsPerManifest }, () => {
      const bytes = randomBytes(48);
      return { digest: sha256(bytes), bytes };
    });
    const [config, ...layers] = blobs;
    const bytes = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config!.digest, size: config!.bytes.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.bytes.length })),
    }));
    // Spread garbage evenly inside each repository: its j-th manifest is garbage when the running
    // share of garbage crosses a whole number.
    const j = repository.manifests.length;
    const garbage = Math.floor((j + 1) * options.garbageFraction) > Math.floor(j * options.garbageFraction);
    if (garbage) {
      garbageBlobs += blobs.length;
      garbageBytes += blobs.reduce((n, b) => n + b.bytes.length, 0);
    }
    repository.manifests.push({ digest: sha256(bytes), bytes, blobs, garbage });
  }
  return { repositories, blobs: options.manifests * options.blobsPerManifest, garbageBlobs, garbageBytes };
}

/** Writes every blob object of `model` to `store`, `concurrency` at a time. */
export async function writeModelObjects(model: RegistryModel, store: ObjectStore, concurrency = 32): Promise<void> {
  const blobs = model.repositories.flatMap((r) => r.manifests.flatMap((m) => m.blobs));
  await mapBounded(blobs, concurrency, (b) => store.put(blobKey(b.digest), b.bytes, { contentLength: b.bytes.length }));
}

/**
 * Inserts `model` into quayfleet's tables (namespaces with a `windowS` time machine, repositories,
 * blobs placed at `locationId`, manifests, links, one tag per manifest) with multi-row inserts.
 * Returns repository ids in model order.
 */
export async function insertModelRows(pool: Pool, model: RegistryModel, options: { locationId: number; nowMs: number; windowS: number }): Promise<number[]> {
  const names = [...new Set(model.repositories.map((r) => r.namespace))];
  const { rows: ns } = await pool.query<{ id: number; username: string }>(
    `INSERT INTO namespace (username, organization, removed_tag_expiration_s) SELECT unnest($1::text[]), true, $2 RETURNING id, username`, [names, options.windowS]);
  const nsId = new Map(ns.map((n) => [n.username, n.id]));
  const { rows: repos } = await pool.query<{ id: number }>(
    `INSERT INTO repository (namespace_user_id, name) SELECT * FROM unnest($1::bigint[], $2::text[]) ORDER BY 1 RETURNING id`,
    [model.repositories.map((r) => nsId.get(r.namespace)), model.repositories.map((r) => r.name)]);
  const repoIds = await pool.query<{ id: number; name: string }>(`SELECT id, name FROM repository WHERE id = ANY($1::bigint[])`, [repos.map((r) => r.id)]);
  const repoId = new Map(repoIds.rows.map((r) => [r.name, r.id]));
  for (const repo of model.repositories) {
    for (let i = 0; i < repo.manifests.length; i += 500) await insertManifests(pool, repoId.get(repo.name)!, repo.manifests.slice(i, i + 500), options);
  }
  return model.repositories.map((r) => repoId.get(r.name)!);
}

async function insertManifests(pool: Pool, repositoryId: number, manifests: ModelManifest[], options: { locationId: number; nowMs: number; windowS: number }): Promise<void> {
  const blobs = manifests.flatMap((m) => m.blobs);
  const { rows: stored } = await pool.query<{ id: number; content_checksum: string }>(
    `INSERT INTO imagestorage (content_checksum, image_size) SELECT * FROM unnest($1::text[], $2::bigint[]) RETURNING id, content_checksum`,
    [blobs.map((b) => b.digest), blobs.map((b) => b.bytes.length)]);
  const blobId = new Map(stored.map((s) => [s.content_checksum, s.id]));
  await pool.query(`INSERT INTO imagestorageplacement (storage_id, location_id) SELECT unnest($1::bigint[]), $2`, [stored.map((s) => s.id), options.locationId]);
  const { rows: inserted } = await pool.query<{ id: number; digest: string }>(
    `INSERT INTO manifest (repository_id, digest, media_type, manifest_bytes, layers_compressed_size)
     SELECT $1, d, 'application/vnd.oci.image.manifest.v1+json', b, 0 FROM unnest($2::text[], $3::bytea[]) AS u(d, b) RETURNING id, digest`,
    [repositoryId, manifests.map((m) => m.digest), manifests.map((m) => m.bytes)]);
  const manifestId = new Map(inserted.map((m) => [m.digest, m.id]));
  const links = manifests.flatMap((m) => m.blobs.map((b) => [manifestId.get(m.digest)!, blobId.get(b.digest)!] as const));
  await pool.query(`INSERT INTO manifestblob (repository_id, manifest_id, blob_id) SELECT $1, * FROM unnest($2::bigint[], $3::bigint[])`,
    [repositoryId, links.map((l) => l[0]), links.map((l) => l[1])]);
  const ended = options.nowMs - options.windowS * 1000 - 60_000;
  await pool.query(
    `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms) SELECT 't' || m, $1, m, $2, e FROM unnest($3::bigint[], $4::bigint[]) AS u(m, e)`,
    [repositoryId, ended - 60_000, manifests.map((m) => manifestId.get(m.digest)!), manifests.map((m) => (m.garbage ? ended : null))]);
}
