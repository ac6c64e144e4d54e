/**
 * Recording a finished, verified upload (ARCHITECTURE.md, Push; invariant 1). First an upload
 * commit intent is committed on its own (`shared/db/upload-intents.ts`): should this process die
 * after the move below but before the rows commit, GC finds the intent once the lease has passed
 * and deletes the object no row points at. Then in ONE transaction: take the blob's digest lock
 * (GC takes the same lock before deleting objects), settle the intent, then either discard the
 * upload object (the location already holds the blob) or move it to the blob's content address,
 * and record imagestorage, the placement, the repository's upload lease and the outbox row that
 * schedules GC for the end of the second the lease expires in. The lock is held from writing the
 * final object until the rows commit, so GC never sees the object without its rows.
 */
import { CHUNK_CLEANUP_DELAY_MS, chunkCleanup } from '../../../queues/chunk-cleanup.ts';
import { garbagecollection } from '../../../queues/garbagecollection.ts';
import { getBlob, leaseBlob, recordBlobPlacement } from '../../../shared/db/blobs.ts';
import { lockBlobDigest } from '../../../shared/db/locks.ts';
import { enqueueInTransaction } from '../../../shared/db/outbox.ts';
import { withTransaction, type Queryable } from '../../../shared/db/pool.ts';
import type { RepositoryRow } from '../../../shared/db/repositories.ts';
import { recordUploadIntent, settleUploadIntent } from '../../../shared/db/upload-intents.ts';
import { deleteUpload } from '../../../shared/db/uploads.ts';
import { NotFoundError } from '../../../shared/storage/errors.ts';
import { blobKey } from '../../../shared/storage/keys.ts';
import type { ObjectStore } from '../../../shared/storage/types.ts';
import type { V2Context } from '../context.ts';

export interface FinishedUpload {
  readonly repository: RepositoryRow;
  readonly digest: string;
  readonly size: number;
  /** The object holding the verified bytes, at the preferred location. */
  readonly objectKey: string;
  readonly location: string;
  /** The session to delete with the commit (absent for a mount). */
  readonly uuid?: string;
  /** Objects of the session nothing needs after the commit, queued for `chunk_cleanup`. */
  readonly segments?: readonly string[];
}

/** Records the blob and its lease in the repository; the upload object ends at the blob's key or is deleted. */
export async function commitBlob(ctx: V2Context, upload: FinishedUpload): Promise<void> {
  const store = ctx.deps.storage.store(upload.location);
  const locationId = (await ctx.locations()).idOf(upload.location);
  const intentId = await recordUploadIntent(ctx.deps.db, {
    locationId, digest: upload.digest, objectKey: blobKey(upload.digest), sizeBytes: upload.size, resolveAfter: leaseEnd(ctx),
  });
  let duplicate = false;
  await withTransaction(ctx.deps.db, async (tx) => {
    await lockBlobDigest(tx, upload.digest);
    // Only after a whole lease can GC have resolved it; the bytes then must not be moved into place.
    if (!(await settleUploadIntent(tx, intentId))) throw new Error(`upload of ${upload.digest} took longer than its lease to commit`);
    duplicate = await alreadyStored(tx, store, upload, locationId);
    const etag = duplicate ? undefined : await moveToContentAddress(store, upload);
    const blob = await recordBlobPlacement(tx, { digest: upload.digest, size: upload.size, locationId, etag });
    await leaseInTransaction(ctx, tx, upload.repository, blob.id);
    if (upload.uuid) {
      await deleteUpload(tx, upload.uuid);
      const segments = [...(upload.segments ?? []), ...(duplicate ? [upload.objectKey] : [])];
      if (segments.length > 0) await queueSegments(tx, upload.location, upload.uuid, segments);
    }
  });
  ctx.deps.onOutboxWrite?.();
  if (duplicate) await store.delete(upload.objectKey).catch(() => undefined); // unreferenced; the upload sweep retries
}

/**
 * Gives `repository` a lease on blob `blobId` until PUSH_TEMP_TAG_EXPIRATION_SEC from now, with
 * the GC job that runs when it expires. Call inside a transaction holding the digest lock.
 */
export async function leaseInTransaction(ctx: V2Context, tx: Queryable, repository: RepositoryRow, blobId: number): Promise<void> {
  const at = ctx.now();
  const expiresAt = leaseEnd(ctx);
  await leaseBlob(tx, { repositoryId: repository.id, blobId, at: new Date(at), expiresAt });
  // One job per repository and second (the dedupe id), run at the END of that second as the tag
  // path does: at the first lease's exact expiry, the leases expiring later in the same second
  // would still be live and wait for the sweep.
  const dueAtS = Math.ceil(expiresAt.getTime() / 1000);
  await enqueueInTransaction(tx, garbagecollection, {
    v: 1, reason: 'upload_lease', repositoryId: repository.id, dueAtS, namespace: repository.namespace, repository: repository.name,
  }, { runAt: new Date(dueAtS * 1000) });
}

/**
 * Queues the deletion of a finished or cancelled session's leftover objects 30 s from now, in the
 * transaction that ends the session (the caller still deletes them at once, best effort; the job
 * makes sure they go even when that fails or the process dies).
 */
export async function queueSegments(tx: Queryable, location: string, uuid: string, paths: readonly string[]): Promise<void> {
  for (let i = 0; i < paths.length; i += 1000) {
    await enqueueInTransaction(tx, chunkCleanup, { v: 1, location, uploadUuid: uuid, paths: paths.slice(i, i + 1000) },
      { runAt: new Date(Date.now() + CHUNK_CLEANUP_DELAY_MS) });
  }
}

/** When a lease taken now expires (PUSH_TEMP_TAG_EXPIRATION_SEC from now). */
function leaseEnd(ctx: V2Context): Date {
  return new Date(ctx.now() + ctx.deps.config.quay.PUSH_TEMP_TAG_EXPIRATION_SEC * 1000);
}

// The location already holds these bytes when a placement says so and the object is really there
// (a missing object is repaired by moving the new copy into place).
async function alreadyStored(tx: Queryable, store: ObjectStore, upload: FinishedUpload, locationId: number): Promise<boolean> {
  const existing = await getBlob(tx, upload.digest);
  if (!existing?.location_ids.includes(locationId)) return false;
  const stat = await store.stat(blobKey(upload.digest)).catch((error: unknown) => {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  });
  return stat?.size === upload.size;
}

// Idempotent for a retried transaction: a source already moved is fine when the target holds it.
// Resolves with the moved object's ETag where the driver answered it (replication's one-request
// server-side copy checks it).
async function moveToContentAddress(store: ObjectStore, upload: FinishedUpload): Promise<string | undefined> {
  const key = blobKey(upload.digest);
  try {
    return (await store.move(upload.objectKey, key))?.etag;
  } catch (error) {
    if (!(error instanceof NotFoundError) || (await store.stat(key)).size !== upload.size) throw error;
    return undefined;
  }
}
