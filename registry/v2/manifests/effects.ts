/**
 * The work a manifest push causes, written as outbox rows in the push's transaction: replication
 * of its blobs to the locations they are missing from (FEATURE_STORAGE_REPLICATION;
 * DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS and the namespace's regions), and one `repo_push` notification job per configured
 * repository notification, with Quay's event_data.
 */
import { imagestoragereplication } from '../../../queues/imagestoragereplication.ts';
import type { BlobRow } from '../../../shared/db/blobs.ts';
import { enqueueRepositoryEvent } from '../../../shared/db/notifications.ts';
import { enqueueManyInTransaction } from '../../../shared/db/outbox.ts';
import { namespaceRegionIds } from '../../../shared/db/replication.ts';
import { replicationGate } from '../../../shared/storage/replication-gate.ts';
import type { Queryable } from '../../../shared/db/pool.ts';
import type { RepositoryRow } from '../../../shared/db/repositories.ts';
import type { Principal } from '../../auth/access.ts';
import type { V2Context } from '../context.ts';

/**
 * Enqueues replication of every blob some required location (DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS
 * plus the namespace's regions) does not hold yet: one job per blob, however often the manifest
 * lists it (the dedupe id is per blob, so pushes from several namespaces share one job too).
 */
export async function enqueueReplication(ctx: V2Context, tx: Queryable, repository: RepositoryRow, blobs: readonly BlobRow[]): Promise<void> {
  if (blobs.length === 0 || !replicationGate(ctx.deps.config.quay).enabled) return;
  const locations = await ctx.locations();
  const required = new Set(ctx.deps.storage.defaultLocations.map((name) => locations.idOf(name)));
  // A region naming a location this process has no store for cannot be copied to; the worker logs it.
  for (const id of await namespaceRegionIds(tx, repository.namespace_user_id)) if (locations.nameOf(id) !== undefined) required.add(id);
  if (required.size === 0) return;
  const missing = new Map<number, BlobRow>();
  for (const blob of blobs) {
    const held = new Set(blob.location_ids);
    if (![...required].every((id) => held.has(id))) missing.set(blob.id, blob);
  }
  await enqueueManyInTransaction(tx, imagestoragereplication, [...missing.values()].map((blob) => (
    { v: 1 as const, storageId: blob.id, namespaceId: repository.namespace_user_id, digest: blob.digest })));
}

/** Enqueues the `repo_push` notifications of the repository for a push of `tag` (Quay's event_data). */
export async function enqueuePushNotifications(
  ctx: V2Context, tx: Queryable, input: { repository: RepositoryRow; principal: Principal; tag: string },
): Promise<void> {
  const performerData = input.principal.id === undefined ? {} : { entity_id: input.principal.id, entity_name: input.principal.username };
  await enqueueRepositoryEvent(tx, input.repository.id, 'repo_push', { updated_tags: [input.tag] }, { site: ctx.deps.config.quay, performerData });
}
