/**
 * Storage-versus-database audit (invariant 2): after GC settles, every blob object in every
 * location has a row and a placement there (or a pending deletion), every placement has its
 * object, and no row is left that nothing references. Reusable by any test, and cheap enough to
 * run by hand on a small registry (it lists `sha256/` of each location once).
 */
import { blobKey } from '../../storage/keys.ts';
import type { Pool, Queryable } from '../pool.ts';
import { isBlobDigest } from './blobs.ts';
import { dryRun } from './dry-run.ts';
import type { BlobStores } from './pending-deletions.ts';
import { pendingUploadIntents } from './upload-intents.ts';

/** One location's comparison. */
export interface LocationAudit {
  readonly location: string;
  /** Blob objects listed under `sha256/`. */
  readonly objects: number;
  /** Placements recorded for this location. */
  readonly placements: number;
  /** Objects with neither a placement, a pending deletion nor an upload commit intent here: leaked storage. */
  readonly orphanObjects: string[];
  /** Placements whose object is absent: a broken blob (invariant 1 violated). */
  readonly missingObjects: string[];
  /** Objects still waiting in `pendingstoragedeletion`. */
  readonly pendingObjects: number;
}

/** The whole audit. `ok` means GC has settled and storage matches the database exactly. */
export interface AuditReport {
  readonly ok: boolean;
  /** No orphan and no missing objects anywhere (pending deletions allowed). */
  readonly storageConsistent: boolean;
  readonly locations: LocationAudit[];
  /** What GC would still collect now (tags, manifests, leases, blobs), by id. */
  readonly collectable: { tags: number[]; manifests: number[]; leases: number[]; blobs: number[] };
  /** Labels no manifest links. */
  readonly danglingLabels: number[];
  readonly pendingDeletions: number;
  /** Upload commit intents not yet settled (a push in flight, or one that died and GC has not resolved). */
  readonly uploadIntents: number;
}

/**
 * Audits `locations` (names in `imagestoragelocation` and in `stores`) at `nowMs`. `onProgress`
 * hears the steps done of the total: one per location (its listing is the long part), then the GC plan.
 */
export async function auditStorage(
  pool: Pool, stores: BlobStores, locations: readonly string[], options: { nowMs?: number; onProgress?(done: number, total: number): void } = {},
): Promise<AuditReport> {
  const steps = locations.length + 1;
  options.onProgress?.(0, steps);
  const intents = await pendingUploadIntents(pool);
  const perLocation: LocationAudit[] = [];
  for (const location of locations) {
    const covered = new Set(intents.filter((i) => i.location === location).map((i) => i.object_key));
    perLocation.push(await auditLocation(pool, stores, location, covered));
    options.onProgress?.(perLocation.length, steps);
  }
  const plan = await dryRun(pool, {}, { nowMs: options.nowMs });
  options.onProgress?.(steps, steps);
  const { rows: labels } = await pool.query<{ id: number }>(
    `SELECT l.id FROM label l WHERE NOT EXISTS (SELECT 1 FROM manifestlabel ml WHERE ml.label_id = l.id) ORDER BY l.id`);
  const { rows: pending } = await pool.query<{ count: number }>(`SELECT count(*)::bigint AS count FROM pendingstoragedeletion`);
  const storageConsistent = perLocation.every((l) => l.orphanObjects.length === 0 && l.missingObjects.length === 0);
  const collectable = {
    tags: plan.tags.map((t) => t.id), manifests: plan.manifests.map((m) => m.id),
    leases: plan.leases.map((l) => l.id), blobs: plan.blobs.map((b) => b.id),
  };
  const pendingDeletions = pending[0]!.count;
  const settled = Object.values(collectable).every((ids) => ids.length === 0) && labels.length === 0 && pendingDeletions === 0 && intents.length === 0;
  return {
    ok: storageConsistent && settled, storageConsistent, locations: perLocation, collectable, danglingLabels: labels.map((l) => l.id),
    pendingDeletions, uploadIntents: intents.length,
  };
}

/** The object keys the database accounts for at `location`: placements, pending deletions, upload commit intents. */
async function recordedKeys(db: Queryable, location: string): Promise<{ placed: Set<string>; pending: Set<string>; intended: Set<string> }> {
  const placed = new Set<string>();
  const { rows } = await db.query<{ content_checksum: string }>(
    `SELECT s.content_checksum FROM imagestorageplacement p JOIN imagestorage s ON s.id = p.storage_id
       JOIN imagestoragelocation l ON l.id = p.location_id WHERE l.name = $1`, [location]);
  for (const row of rows) if (isBlobDigest(row.content_checksum)) placed.add(blobKey(row.content_checksum));
  const { rows: pendingRows } = await db.query<{ object_key: string }>(
    `SELECT p.object_key FROM pendingstoragedeletion p JOIN imagestoragelocation l ON l.id = p.location_id WHERE l.name = $1`, [location]);
  const intended = new Set((await pendingUploadIntents(db)).filter((i) => i.location === location).map((i) => i.object_key));
  return { placed, pending: new Set(pendingRows.map((r) => r.object_key)), intended };
}

async function auditLocation(db: Queryable, stores: BlobStores, location: string, intended: ReadonlySet<string>): Promise<LocationAudit> {
  const store = stores.store(location);
  const before = await recordedKeys(db, location);
  const listed = new Set<string>();
  for await (const object of store.list('sha256/')) listed.add(object.key);
  let missingObjects = [...before.placed].filter((key) => !listed.has(key));
  let orphanObjects = [...listed].filter((key) => !before.placed.has(key) && !before.pending.has(key) && !before.intended.has(key) && !intended.has(key));
  // The rows were read before the listing, which takes a while: a GC run (or an upload) in between
  // changes both. A placement GC deleted with its object after the rows were read would show as a
  // missing object, an object GC deleted after the listing, or one an upload wrote, as an orphan.
  // So each candidate is looked at again after the listing, object first then rows for a missing
  // one (absent, and still placed once seen absent), rows first then object for an orphan (still
  // unaccounted for, and still there).
  if (missingObjects.length > 0) {
    const absent: string[] = [];
    for (const key of missingObjects) if (!(await store.exists(key))) absent.push(key);
    const after = await recordedKeys(db, location);
    missingObjects = absent.filter((key) => after.placed.has(key));
  }
  if (orphanObjects.length > 0) {
    const after = await recordedKeys(db, location);
    const unaccounted = orphanObjects.filter((key) => !after.placed.has(key) && !after.pending.has(key) && !after.intended.has(key));
    orphanObjects = [];
    for (const key of unaccounted) if (await store.exists(key)) orphanObjects.push(key);
  }
  return {
    location,
    objects: listed.size,
    placements: before.placed.size,
    orphanObjects: orphanObjects.sort(),
    missingObjects: missingObjects.sort(),
    pendingObjects: [...before.pending].filter((key) => listed.has(key)).length,
  };
}
