/**
 * A registry's rows and objects built directly, for GC tests: namespaces with their time machine,
 * repositories, blobs written to LocalStorage and recorded through the push path's own functions
 * (under its digest lock), manifests, tags, leases, labels, and deletion marks.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureLocations, leaseBlob, recordBlobPlacement } from '../../shared/db/blobs.ts';
import { lockBlobDigest } from '../../shared/db/locks.ts';
import { insertManifest, linkManifestBlobs, linkManifestChildren } from '../../shared/db/manifests.ts';
import { withTransaction, type Pool } from '../../shared/db/pool.ts';
import { createDistributedStorage, type DistributedStorage } from '../../shared/storage/distributed.ts';
import { blobKey } from '../../shared/storage/keys.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

/** One test's database, storage locations and row builders. */
export interface GcFixture {
  readonly database: TestDatabase;
  readonly pool: Pool;
  readonly storage: DistributedStorage;
  /** Location name -> imagestoragelocation id. */
  readonly locationIds: Map<string, number>;
  /** The DISTRIBUTED_STORAGE_CONFIG the storage was built from (for child processes). */
  readonly storageConfig: Record<string, [string, Record<string, unknown>]>;
  close(): Promise<void>;
}

/**
 * A fresh database and one storage location per name (default one, `local_us`): a LocalStorage
 * directory, unless `drivers` gives the location's `[driver, params]` (e.g. RadosGW).
 */
export async function createGcFixture(
  label: string, locations: string[] = ['local_us'], drivers: Record<string, [string, Record<string, unknown>]> = {},
): Promise<GcFixture> {
  const database = await createTestDatabase(label);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), `quayfleet-gc-${label}-`));
  const config = Object.fromEntries(locations.map((name) => [name, drivers[name] ?? ['LocalStorage', { storage_path: path.join(root, name) }] as [string, Record<string, unknown>]]));
  const storage = await createDistributedStorage({ DISTRIBUTED_STORAGE_CONFIG: config, DISTRIBUTED_STORAGE_PREFERENCE: locations });
  const locationIds = await ensureLocations(database.pool, locations);
  return {
    database, pool: database.pool, storage, locationIds, storageConfig: config,
    async close() {
      await storage.close();
      await database.drop();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

/** sha256 digest of `bytes`. */
export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Creates a namespace with a time machine of `windowS` seconds (default 0); returns its id. */
export async function namespace(f: GcFixture, name: string, windowS = 0, kind: 'user' | 'organization' = 'organization'): Promise<number> {
  const { rows } = await f.pool.query<{ id: number }>(
    `INSERT INTO namespace (username, organization, removed_tag_expiration_s) VALUES ($1, $2, $3) RETURNING id`, [name, kind === 'organization', windowS]);
  return rows[0]!.id;
}

/** Creates repository `name` in namespace `namespaceId`; returns its id. */
export async function repository(f: GcFixture, namespaceId: number, name: string): Promise<number> {
  const { rows } = await f.pool.query<{ id: number }>(`INSERT INTO repository (namespace_user_id, name) VALUES ($1, $2) RETURNING id`, [namespaceId, name]);
  return rows[0]!.id;
}

/** A stored blob. */
export interface TestBlob {
  readonly id: number;
  readonly digest: string;
  readonly size: number;
}

/**
 * Writes `bytes` (random by default) to every location in `locations` (default: the preferred one)
 * and records row and placements as the push path does: digest lock, object, rows, commit.
 */
export async function blob(f: GcFixture, options: { bytes?: Buffer; locations?: string[] } = {}): Promise<TestBlob> {
  const bytes = options.bytes ?? randomBytes(64);
  const digest = digestOf(bytes);
  const locations = options.locations ?? [f.storage.preferredLocation];
  const id = await withTransaction(f.pool, async (tx) => {
    await lockBlobDigest(tx, digest);
    let blobId = 0;
    for (const location of locations) {
      await f.storage.store(location).put(blobKey(digest), bytes, { contentLength: bytes.length });
      blobId = (await recordBlobPlacement(tx, { digest, size: bytes.length, locationId: f.locationIds.get(location)! })).id;
    }
    return blobId;
  });
  return { id, digest, size: bytes.length };
}

/** Inserts a blob row with no placement (a proxy-cache placeholder) and no object. */
export async function placeholderBlob(f: GcFixture): Promise<TestBlob> {
  const digest = digestOf(randomBytes(32));
  const { rows } = await f.pool.query<{ id: number }>(`INSERT INTO imagestorage (content_checksum, image_size) VALUES ($1, 10) RETURNING id`, [digest]);
  return { id: rows[0]!.id, digest, size: 10 };
}

/** A stored manifest. */
export interface TestManifest {
  readonly id: number;
  readonly digest: string;
}

/** Creates a manifest in `repositoryId` linking `blobs` and `children`, optionally a referrer of `subject`. */
export async function manifest(
  f: GcFixture, repositoryId: number, options: { blobs?: TestBlob[]; children?: TestManifest[]; subject?: string; labels?: number[] } = {},
): Promise<TestManifest> {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, nonce: randomBytes(8).toString('hex') }));
  const digest = digestOf(bytes);
  return withTransaction(f.pool, async (tx) => {
    const { id } = await insertManifest(tx, {
      repositoryId, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes, configMediaType: null, artifactType: null,
      subject: options.subject ?? null, layersCompressedSize: (options.blobs ?? []).reduce((n, b) => n + b.size, 0),
    });
    await linkManifestBlobs(tx, repositoryId, id, (options.blobs ?? []).map((b) => b.id));
    await linkManifestChildren(tx, repositoryId, id, (options.children ?? []).map((c) => c.id));
    for (const labelId of options.labels ?? []) {
      await tx.query(`INSERT INTO manifestlabel (repository_id, manifest_id, label_id) VALUES ($1, $2, $3)`, [repositoryId, id, labelId]);
    }
    return { id, digest };
  });
}

/** Creates a label row; returns its id. */
export async function label(f: GcFixture, key = 'k', value = 'v'): Promise<number> {
  const { rows } = await f.pool.query<{ id: number }>(`INSERT INTO label (key, value) VALUES ($1, $2) RETURNING id`, [key, value]);
  return rows[0]!.id;
}

/** Creates a tag row; `endMs` ends it (default alive); returns its id. */
export async function tag(
  f: GcFixture, repositoryId: number, name: string, m: TestManifest, options: { startMs?: number; endMs?: number | null; hidden?: boolean } = {},
): Promise<number> {
  const { rows } = await f.pool.query<{ id: number }>(
    `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms, hidden) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [name, repositoryId, m.id, options.startMs ?? Date.now() - 60_000, options.endMs ?? null, options.hidden ?? false]);
  return rows[0]!.id;
}

/** Ends the alive tag `name` at `atMs` (a delete through the UI). */
export async function endTag(f: GcFixture, repositoryId: number, name: string, atMs = Date.now()): Promise<void> {
  await f.pool.query(`UPDATE tag SET lifetime_end_ms = $3 WHERE repository_id = $1 AND name = $2 AND lifetime_end_ms IS NULL`, [repositoryId, name, atMs]);
}

/** Leases `b` in `repositoryId` until `expiresAt`. */
export async function lease(f: GcFixture, repositoryId: number, b: TestBlob, expiresAt: Date): Promise<void> {
  await withTransaction(f.pool, (tx) => leaseBlob(tx, { repositoryId, blobId: b.id, at: new Date(), expiresAt }));
}

/** Whether blob `digest`'s object exists at `location` (default the preferred one). */
export async function objectExists(f: GcFixture, digest: string, location = f.storage.preferredLocation): Promise<boolean> {
  return f.storage.store(location).exists(blobKey(digest));
}

/** Number of rows in `table` matching `where` (SQL, default all). */
export async function count(f: GcFixture, table: string, where = 'true', params: unknown[] = []): Promise<number> {
  const { rows } = await f.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`, params);
  return rows[0]!.n;
}

/** Whether the imagestorage row of `b` still exists. */
export async function blobRowExists(f: GcFixture, b: TestBlob): Promise<boolean> {
  return (await count(f, 'imagestorage', 'id = $1', [b.id])) === 1;
}

/** Whether manifest `m` still exists. */
export async function manifestExists(f: GcFixture, m: TestManifest): Promise<boolean> {
  return (await count(f, 'manifest', 'id = $1', [m.id])) === 1;
}
