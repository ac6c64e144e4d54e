/**
 * The work a manifest push causes, written as outbox rows in the push's transaction: replication
 * of its blobs to the locations they are missing from (FEATURE_STORAGE_REPLICATION and
 * DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS), and one `repo_push` notification job per configured
 * repository notification, with Quay's event_data.
 */
import { imagestoragereplication } from '../../../queues/imagestoragereplication.ts';
import type { BlobRow } from '../../../shared/db/blobs.ts';
import { enqueueRepositoryEvent } from '../../../shared/db/notifications.ts';
import { enqueueInTransaction } from '../../../shared/db/outbox.ts';
import type { Queryable } from '../../../shared/db/pool.ts';
import type { RepositoryRow } from '../../../shared/db/repositories.ts';
import type { Principal } from '../../auth/access.ts';
import type { V2Context } from '../context.ts';

/** Enqueues replication of every blob that some default location does not hold yet. */
export async function enqueueReplication(ctx: V2Context, tx: Queryable, repository: RepositoryRow, blobs: readonly BlobRow[]): Promise<void> {
  const required = ctx.deps.storage.defaultLocations;
  if (!ctx.deps.config.quay.FEATURE_STORAGE_REPLICATION || required.length === 0) return;
  const locations = await ctx.locations();
  for (const blob of blobs) {
    const held = new Set(blob.location_ids.map((id) => locations.nameOf(id)));
    if (required.every((location) => held.has(location))) continue;
    await enqueueInTransaction(tx, imagestoragereplication, { v: 1, storageId: blob.id, namespaceId: repository.namespace_user_id, digest: blob.digest });
  }
}

/** Enqueues the `repo_push` notifications of the repository for a push of `tag` (Quay's event_data). */
export async function enqueuePushNotifications(
  ctx: V2Context, tx: Queryable, input: { repository: RepositoryRow; principal: Principal; tag: string },
): Promise<void> {
  const performerData = input.principal.id === undefined ? {} : { entity_id: input.principal.id, entity_name: input.principal.username };
  await enqueueRepositoryEvent(tx, input.repository.id, 'repo_push', { updated_tags: [input.tag] }, { site: ctx.deps.config.quay, performerData });
}
