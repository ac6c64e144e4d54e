/**
 * The manifest PUT transaction: everything a push records happens here, in ONE transaction, so a
 * failure anywhere leaves nothing behind: the manifest (idempotent on (repository, digest)), its
 * blob and child links, the quota hook, the tag (ending the previous alive row, as Quay's time
 * machine does, with the GC job for when that row leaves the window), the `push_repo` log entry,
 * and the outbox rows for replication and notifications.
 *
 * References are resolved inside the transaction and locked FOR KEY SHARE as they are read (blobs,
 * child manifests, an existing manifest row), so a concurrent GC skips them until commit instead
 * of deleting them between the lookup and the link.
 */
import { findRepositoryBlobs, type BlobRow } from '../../../shared/db/blobs.ts';
import { logAction } from '../../../shared/db/logs.ts';
import { findManifestIds, insertManifest, linkManifestBlobs, linkManifestChildren } from '../../../shared/db/manifests.ts';
import type { Queryable } from '../../../shared/db/pool.ts';
import { onManifestBlobsAdded } from '../../../shared/db/quota-hook.ts';
import type { RepositoryRow } from '../../../shared/db/repositories.ts';
import { keepManifestAlive, setTag } from '../../../shared/db/tags.ts';
import { actorLogMetadata, type Principal } from '../../auth/access.ts';
import { OciError } from '../../errors.ts';
import type { ParsedManifest } from '../../manifests/parse.ts';
import type { V2Context } from '../context.ts';
import { scheduleCollectionOfEndedTags } from './collection.ts';
import { enqueuePushNotifications, enqueueReplication } from './effects.ts';

/** One manifest push. */
export interface ManifestPush {
  readonly repository: RepositoryRow;
  readonly principal: Principal;
  readonly manifest: ParsedManifest;
  /** The tag pushed, or undefined for a push by digest. */
  readonly tag: string | undefined;
  readonly ip: string;
  readonly userAgent: string | undefined;
}

/** Records a validated manifest push; call inside a transaction. */
export async function storeManifest(ctx: V2Context, tx: Queryable, push: ManifestPush): Promise<void> {
  const { repository, manifest } = push;
  const at = ctx.now();
  const blobs = await resolveBlobs(tx, repository.id, manifest, at);
  const childIds = await resolveChildren(tx, repository.id, manifest);
  const { id, created } = await insertManifest(tx, {
    repositoryId: repository.id, digest: manifest.digest, mediaType: manifest.mediaType, bytes: manifest.bytes,
    configMediaType: manifest.config?.mediaType ?? null, artifactType: manifest.artifactType ?? null,
    subject: manifest.subject?.digest ?? null, layersCompressedSize: manifest.layersCompressedSize,
  });
  if (created) {
    await linkManifestBlobs(tx, repository.id, id, blobs.map((b) => b.id));
    await linkManifestChildren(tx, repository.id, id, childIds);
  }
  await onManifestBlobsAdded(tx, {
    namespaceId: repository.namespace_user_id, repositoryId: repository.id, manifestId: id, manifestCreated: created,
    tagged: push.tag !== undefined, blobs: blobs.map((b) => ({ id: b.id, size: b.size })),
  }, ctx.deps.config);
  await keepTagged(ctx, tx, push, id, at);
  await logAction(tx, ctx.deps.config.quay, {
    kind: 'push_repo', namespace: { id: repository.namespace_user_id, name: repository.namespace }, performerId: push.principal.id ?? null, repositoryId: repository.id, ip: push.ip,
    metadata: {
      repo: repository.name, namespace: repository.namespace, tag: push.tag ?? null, digest: manifest.digest,
      media_type: manifest.mediaType, 'user-agent': push.userAgent ?? null, ...actorLogMetadata(push.principal),
    },
    datetime: new Date(at),
  });
  await enqueueReplication(ctx, tx, repository, blobs);
  if (push.tag !== undefined) await enqueuePushNotifications(ctx, tx, { repository, principal: push.principal, tag: push.tag });
}

// Every blob must be linked to the repository (a manifest link, or a lease GC has not removed yet:
// see findRepositoryBlobs), with the size the manifest declares.
async function resolveBlobs(tx: Queryable, repositoryId: number, manifest: ParsedManifest, at: number): Promise<BlobRow[]> {
  const found = await findRepositoryBlobs(tx, repositoryId, manifest.blobs.map((d) => d.digest), new Date(at), { forKeyShare: true });
  return manifest.blobs.map((descriptor) => {
    const blob = found.get(descriptor.digest);
    if (!blob || blob.location_ids.length === 0) throw new OciError('MANIFEST_BLOB_UNKNOWN', undefined, { digest: descriptor.digest });
    if (blob.size !== descriptor.size) {
      throw new OciError('MANIFEST_INVALID', 'descriptor size does not match the blob', { digest: descriptor.digest, size: descriptor.size, blobSize: blob.size });
    }
    return blob;
  });
}

async function resolveChildren(tx: Queryable, repositoryId: number, manifest: ParsedManifest): Promise<number[]> {
  const found = await findManifestIds(tx, repositoryId, manifest.children.map((d) => d.digest), { forKeyShare: true });
  return manifest.children.map((child) => {
    const id = found.get(child.digest);
    if (id === undefined) throw new OciError('MANIFEST_BLOB_UNKNOWN', 'index references a manifest unknown to the repository', { digest: child.digest });
    return id;
  });
}

/**
 * A push by tag moves the tag; a push by digest keeps the manifest alive with a hidden tag for
 * PUSH_TEMP_TAG_EXPIRATION_SEC (for ever for a referrer, as Quay). Every tag row that ends
 * schedules the repository's GC for when it leaves the namespace's time machine.
 */
async function keepTagged(ctx: V2Context, tx: Queryable, push: ManifestPush, manifestId: number, at: number): Promise<void> {
  const { repository } = push;
  const endings: number[] = [];
  if (push.tag !== undefined) {
    const { ended } = await setTag(tx, { repositoryId: repository.id, name: push.tag, manifestId, nowMs: at });
    endings.push(...ended.map((t) => t.lifetime_end_ms));
  } else {
    const endMs = push.manifest.subject ? null : at + ctx.deps.config.quay.PUSH_TEMP_TAG_EXPIRATION_SEC * 1000;
    const kept = await keepManifestAlive(tx, { repositoryId: repository.id, manifestId, nowMs: at, endMs });
    if (kept?.endMs != null) endings.push(kept.endMs);
  }
  await scheduleCollectionOfEndedTags(tx, repository, endings);
}
