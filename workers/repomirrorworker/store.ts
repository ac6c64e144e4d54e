/**
 * What a sync records, through the same shared rows and locks the front end's push uses:
 * - a blob: under its digest lock, either a lease on the blob the registry already holds (no
 *   transfer), or the verified upload object moved to its content address (after an upload commit
 *   intent, as a push) with its imagestorage row, placement (with the move's ETag) and lease
 *   (invariant 1: GC takes the same lock before deleting);
 * - a tag: ONE transaction inserting its manifests (children before the index, exact bytes), their
 *   blob and child links, the quota accounting (refused over a Reject limit, as a push), the tag
 *   move with the GC job for the row it ends, the `push_repo` log, the `repo_push` notifications
 *   (Quay's skopeo pushed every mirrored tag through the registry, which raised them) and
 *   replication outbox rows. A failure leaves nothing half-visible.
 */
import { garbagecollection } from '../../queues/garbagecollection.ts';
import { imagestoragereplication } from '../../queues/imagestoragereplication.ts';
import type { Config } from '../../shared/config/index.ts';
import { ensureLocations, findRepositoryBlobs, getBlob, leaseBlob, recordBlobPlacement, type BlobRow } from '../../shared/db/blobs.ts';
import { lockBlobDigest } from '../../shared/db/locks.ts';
import { logAction } from '../../shared/db/logs.ts';
import { findManifestIds, insertManifest, linkManifestBlobs, linkManifestChildren } from '../../shared/db/manifests.ts';
import { getNamespaceById } from '../../shared/db/namespaces.ts';
import { enqueueRepositoryEvent } from '../../shared/db/notifications.ts';
import { enqueueInTransaction } from '../../shared/db/outbox.ts';
import { withTransaction, type Pool, type Queryable } from '../../shared/db/pool.ts';
import { onManifestBlobsAdded } from '../../shared/db/quota-hook.ts';
import type { RepositoryRow } from '../../shared/db/repositories.ts';
import { scheduleTagCollection } from '../../shared/db/tag-history.ts';
import { endTag, setTag, type EndedTag } from '../../shared/db/tags.ts';
import { recordUploadIntent, settleUploadIntent } from '../../shared/db/upload-intents.ts';
import type { DistributedStorage } from '../../shared/storage/distributed.ts';
import { NotFoundError } from '../../shared/storage/errors.ts';
import { blobKey } from '../../shared/storage/keys.ts';
import type { MirrorManifest } from './manifest.ts';

/** What the store needs. */
export interface StoreDeps {
  readonly db: Pool;
  readonly storage: DistributedStorage;
  readonly config: Config;
}

/** A repository as the sync writes to it, with the robot that performs the writes. */
export interface MirrorTarget {
  readonly repository: RepositoryRow;
  readonly robotId: number | null;
  /** The robot's name (`org+robot`), the performer of the `repo_push` notifications. */
  readonly robotName?: string | null;
}

/** When a lease taken at `at` expires (PUSH_TEMP_TAG_EXPIRATION_SEC later). */
function leaseEnd(deps: StoreDeps, at: Date): Date {
  return new Date(at.getTime() + deps.config.quay.PUSH_TEMP_TAG_EXPIRATION_SEC * 1000);
}

async function leaseInTransaction(deps: StoreDeps, tx: Queryable, repository: RepositoryRow, blobId: number, at: Date): Promise<void> {
  const expiresAt = leaseEnd(deps, at);
  await leaseBlob(tx, { repositoryId: repository.id, blobId, at, expiresAt });
  if (!deps.config.quay.FEATURE_GARBAGE_COLLECTION) return;
  await enqueueInTransaction(tx, garbagecollection, {
    v: 1, reason: 'upload_lease', repositoryId: repository.id, dueAtS: Math.ceil(expiresAt.getTime() / 1000),
    namespace: repository.namespace, repository: repository.name,
  }, { runAt: expiresAt });
}

/**
 * Leases blob `digest` to the repository when the registry already holds it anywhere (a placement
 * exists); checked under the digest lock so GC cannot delete it in between. Returns whether it did.
 */
export async function leaseHeldBlob(deps: StoreDeps, repository: RepositoryRow, digest: string, size: number): Promise<boolean> {
  return withTransaction(deps.db, async (tx) => {
    await lockBlobDigest(tx, digest);
    const blob = await getBlob(tx, digest);
    if (!blob || blob.location_ids.length === 0 || blob.size !== size) return false;
    await leaseInTransaction(deps, tx, repository, blob.id, new Date());
    return true;
  });
}

const locationIds = new WeakMap<Pool, Map<string, Promise<number>>>();

// imagestoragelocation ids never change once created: one query per process and location.
function locationIdOf(db: Pool, location: string): Promise<number> {
  let byName = locationIds.get(db);
  if (!byName) locationIds.set(db, byName = new Map());
  let id = byName.get(location);
  if (!id) {
    id = ensureLocations(db, [location]).then((ids) => ids.get(location)!);
    id.catch(() => byName.delete(location));
    byName.set(location, id);
  }
  return id;
}

/**
 * Records a verified upload object as blob `digest` at `location`, leased to the repository, as the
 * push does (registry/v2/uploads/commit.ts): an upload commit intent is committed first, so a
 * worker killed between the move to the content address and the commit leaves an object GC
 * resolves (`shared/db/gc/upload-intents.ts`), never a leak; the placement records the ETag the
 * move answered (S3: the CopyObject's), so replication's first server-side copy of a mirrored
 * blob is one conditional request, as for a pushed one.
 */
export async function commitMirroredBlob(
  deps: StoreDeps, repository: RepositoryRow, input: { digest: string; size: number; objectKey: string; location: string },
): Promise<void> {
  const store = deps.storage.store(input.location);
  const locationId = await locationIdOf(deps.db, input.location);
  const key = blobKey(input.digest);
  const intentId = await recordUploadIntent(deps.db, {
    locationId, digest: input.digest, objectKey: key, sizeBytes: input.size, resolveAfter: leaseEnd(deps, new Date()),
  });
  let duplicate = false;
  await withTransaction(deps.db, async (tx) => {
    await lockBlobDigest(tx, input.digest);
    // Only after a whole lease can GC have resolved it; the bytes then must not be moved into place.
    if (!(await settleUploadIntent(tx, intentId))) throw new Error(`blob ${input.digest} took longer than its lease to commit`);
    const existing = await getBlob(tx, input.digest);
    duplicate = existing?.location_ids.includes(locationId) === true
      && (await store.stat(key).then((s) => s.size === input.size, () => false));
    let etag: string | undefined;
    if (!duplicate) {
      try {
        etag = (await store.move(input.objectKey, key))?.etag;
      } catch (error) {
        if (!(error instanceof NotFoundError) || (await store.stat(key)).size !== input.size) throw error;
      }
    }
    const blob = await recordBlobPlacement(tx, { digest: input.digest, size: input.size, locationId, ...(etag ? { etag } : {}) });
    await leaseInTransaction(deps, tx, repository, blob.id, new Date());
  });
  if (duplicate) await store.delete(input.objectKey).catch(() => undefined);
}

async function enqueueReplication(deps: StoreDeps, tx: Queryable, repository: RepositoryRow, blobs: readonly BlobRow[]): Promise<void> {
  const required = deps.storage.defaultLocations;
  if (!deps.config.quay.FEATURE_STORAGE_REPLICATION || required.length === 0) return;
  const ids = await ensureLocations(tx, required);
  for (const blob of blobs) {
    if (required.every((name) => blob.location_ids.includes(ids.get(name)!))) continue;
    await enqueueInTransaction(tx, imagestoragereplication, { v: 1, storageId: blob.id, namespaceId: repository.namespace_user_id, digest: blob.digest });
  }
}

/** Schedules the GC job of the repository for when the tag rows `ended` leave the namespace's time machine. */
export async function scheduleCollection(tx: Queryable, repository: RepositoryRow, ended: readonly EndedTag[]): Promise<void> {
  if (ended.length === 0) return;
  const windowS = (await getNamespaceById(tx, repository.namespace_user_id))?.removed_tag_expiration_s ?? 0;
  for (const dueAtS of new Set(ended.map((t) => Math.ceil(t.lifetime_end_ms / 1000) + windowS))) {
    await scheduleTagCollection(tx, { repositoryId: repository.id, namespace: repository.namespace, repository: repository.name, dueAtS });
  }
}

async function insertOne(deps: StoreDeps, tx: Queryable, target: MirrorTarget, manifest: MirrorManifest, tagged: boolean, at: Date): Promise<number> {
  const { repository } = target;
  const found = await findRepositoryBlobs(tx, repository.id, manifest.blobs.map((b) => b.digest), at, { forKeyShare: true });
  const blobs = manifest.blobs.map((d) => {
    const blob = found.get(d.digest);
    if (!blob) throw new Error(`blob ${d.digest} of manifest ${manifest.digest} is not in the repository`);
    return blob;
  });
  const children = await findManifestIds(tx, repository.id, manifest.children.map((c) => c.digest), { forKeyShare: true });
  const { id, created } = await insertManifest(tx, {
    repositoryId: repository.id, digest: manifest.digest, mediaType: manifest.mediaType, bytes: manifest.bytes,
    configMediaType: manifest.config?.mediaType ?? null, artifactType: manifest.artifactType, subject: manifest.subject,
    layersCompressedSize: manifest.layersCompressedSize,
  });
  if (created) {
    await linkManifestBlobs(tx, repository.id, id, blobs.map((b) => b.id));
    // A sparse index (architecture filter) links only the children that were copied.
    await linkManifestChildren(tx, repository.id, id, manifest.children.flatMap((c) => children.get(c.digest) ?? []));
  }
  await onManifestBlobsAdded(tx, {
    namespaceId: repository.namespace_user_id, repositoryId: repository.id, manifestId: id, manifestCreated: created,
    tagged, blobs: blobs.map((b) => ({ id: b.id, size: b.size })),
  }, deps.config);
  await enqueueReplication(deps, tx, repository, blobs);
  return id;
}

/**
 * Stores `manifests` (children first, the tagged manifest last) and points `tag` at the last one,
 * in the caller's transaction `tx`. Returns whether the tag moved (false: it already pointed there).
 */
export async function storeTag(deps: StoreDeps, tx: Queryable, target: MirrorTarget, tag: string, manifests: readonly MirrorManifest[]): Promise<boolean> {
  const { repository } = target;
  {
    const at = new Date();
    let topId = 0;
    for (const [i, manifest] of manifests.entries()) topId = await insertOne(deps, tx, target, manifest, i === manifests.length - 1, at);
    const { unchanged, ended } = await setTag(tx, { repositoryId: repository.id, name: tag, manifestId: topId, nowMs: at.getTime() });
    await scheduleCollection(tx, repository, ended);
    if (!unchanged) {
      const top = manifests[manifests.length - 1]!;
      await logAction(tx, deps.config.quay, {
        kind: 'push_repo', namespace: { id: repository.namespace_user_id, name: repository.namespace }, performerId: target.robotId, repositoryId: repository.id,
        metadata: { repo: repository.name, namespace: repository.namespace, tag, digest: top.digest, media_type: top.mediaType, 'user-agent': 'quayfleet-repomirror' },
        datetime: at,
      });
      const performerData = target.robotId === null ? {} : { entity_id: target.robotId, entity_name: target.robotName ?? undefined };
      await enqueueRepositoryEvent(tx, repository.id, 'repo_push', { updated_tags: [tag] }, { site: deps.config.quay, performerData });
    }
    return !unchanged;
  }
}

/** Ends the alive tags `names` (Quay's delete_obsolete_tags), with their GC jobs; returns the names ended. */
export async function deleteTags(deps: StoreDeps, target: MirrorTarget, names: readonly string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const { repository } = target;
  return withTransaction(deps.db, async (tx) => {
    const nowMs = Date.now();
    const endedNames: string[] = [];
    const ended: EndedTag[] = [];
    for (const name of names) {
      const rows = await endTag(tx, { repositoryId: repository.id, name, nowMs });
      if (rows.length > 0) endedNames.push(name);
      ended.push(...rows);
      await logAction(tx, deps.config.quay, {
        kind: 'delete_tag', namespace: { id: repository.namespace_user_id, name: repository.namespace }, performerId: target.robotId, repositoryId: repository.id,
        metadata: { repo: repository.name, namespace: repository.namespace, tag: name },
      });
    }
    await scheduleCollection(tx, repository, ended);
    return endedNames;
  });
}

/** Names of the repository's alive, visible tags. */
export async function aliveTagNames(db: Queryable, repositoryId: number): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT name FROM tag WHERE repository_id = $1 AND NOT hidden AND (lifetime_end_ms IS NULL OR lifetime_end_ms > $2) ORDER BY name`,
    [repositoryId, Date.now()]);
  return rows.map((r) => r.name);
}
