/** Scheduling GC for tag rows that ended (or will end): when they leave the namespace's time machine. */
import { getNamespaceById } from '../../../shared/db/namespaces.ts';
import type { Queryable } from '../../../shared/db/pool.ts';
import type { RepositoryRow } from '../../../shared/db/repositories.ts';
import { scheduleTagCollection } from '../../../shared/db/tag-history.ts';

/**
 * Writes one outbox row per distinct second at which a tag row ending at `endsMs` becomes
 * collectable (end + the namespace's removed_tag_expiration_s). Call in the change's transaction.
 */
export async function scheduleCollectionOfEndedTags(tx: Queryable, repository: RepositoryRow, endsMs: readonly number[]): Promise<void> {
  if (endsMs.length === 0) return;
  const windowS = (await getNamespaceById(tx, repository.namespace_user_id))?.removed_tag_expiration_s ?? 0;
  for (const dueAtS of new Set(endsMs.map((endMs) => Math.ceil(endMs / 1000) + windowS))) {
    await scheduleTagCollection(tx, { repositoryId: repository.id, namespace: repository.namespace, repository: repository.name, dueAtS });
  }
}
