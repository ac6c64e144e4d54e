/**
 * Quay's two-step deletes, the synchronous half (reference quay-gc-quota-queue.md §2.5-2.6). The
 * mark runs in the caller's transaction: it hides the repository or namespace, writes the marker
 * row, the action log and the outbox row of the purge job, all or nothing. The purge worker does
 * the rest and removes the marker last, so "marker present" means "purge pending".
 *
 * - repository: renamed to a random UUID (its name is free at once), state MARKED_FOR_DELETION,
 *   `deletedrepository` marker, `repositorygc` job.
 * - namespace: renamed to a random UUID, `deleted` and disabled, its robots likewise,
 *   `deletednamespace` marker (whose unique original_username keeps the name reserved until the
 *   purge ends), `namespacegc` job.
 */
import { randomUUID } from 'node:crypto';
import { namespacegc } from '../../queues/namespacegc.ts';
import { repositorygc } from '../../queues/repositorygc.ts';
import { logAction, NO_LOG_SKIPS, type LogSettings } from './logs.ts';
import type { NamespaceRow } from './namespaces.ts';
import { enqueueInTransaction } from './outbox.ts';
import type { Queryable } from './pool.ts';
import { RepositoryState, type RepositoryRow } from './repositories.ts';

/** Who asked for a deletion, for the action log. */
export interface DeletionActor {
  readonly performerId: number | null;
  readonly ip?: string | null;
  /** The process's log skip rules (`config.quay`); none when omitted. */
  readonly logs?: LogSettings;
}

/**
 * Marks `repository` for deletion. Returns the marker id, or undefined when it was already marked
 * (a repeated request is a no-op). Call inside a transaction.
 */
export async function markRepositoryForDeletion(tx: Queryable, repository: RepositoryRow, actor: DeletionActor): Promise<number | undefined> {
  const { rows } = await tx.query<{ id: number }>(
    `UPDATE repository SET name = $2, state = $3 WHERE id = $1 AND state <> $3 RETURNING id`,
    [repository.id, randomUUID(), RepositoryState.MARKED_FOR_DELETION]);
  if (!rows[0]) return undefined;
  const { rows: markers } = await tx.query<{ id: number }>(
    `INSERT INTO deletedrepository (repository_id, original_name) VALUES ($1, $2) RETURNING id`, [repository.id, repository.name]);
  const markerId = markers[0]!.id;
  await logAction(tx, actor.logs ?? NO_LOG_SKIPS, {
    kind: 'delete_repo', namespace: { id: repository.namespace_user_id, name: repository.namespace }, performerId: actor.performerId, repositoryId: repository.id,
    ip: actor.ip ?? null, metadata: { repo: repository.name, namespace: repository.namespace },
  });
  const payload = { v: 1 as const, repositoryId: repository.id, markerId, originalName: repository.name, namespace: repository.namespace };
  await enqueueInTransaction(tx, repositorygc, payload);
  await tx.query(`UPDATE deletedrepository SET queue_id = $2 WHERE id = $1`, [markerId, repositorygc.dedupeId(payload)]);
  return markerId;
}

/** Thrown when a user cannot be deleted because it is the only admin of organizations. */
export class SoleAdminError extends Error {
  constructor(readonly username: string, readonly organizations: string[]) {
    super(`Cannot delete ${username} as it is the only admin for organizations: ${organizations.join(', ')}`);
    this.name = 'SoleAdminError';
  }
}

/** Organizations in which `userId` is the only enabled member of every admin team. */
export async function soleAdminOrganizations(db: Queryable, userId: number): Promise<string[]> {
  const { rows } = await db.query<{ username: string }>(
    `SELECT o.username FROM namespace o
     WHERE o.organization AND NOT o.deleted
       AND EXISTS (SELECT 1 FROM team t JOIN teammember m ON m.team_id = t.id WHERE t.organization_id = o.id AND t.role = 'admin' AND m.user_id = $1)
       AND NOT EXISTS (SELECT 1 FROM team t JOIN teammember m ON m.team_id = t.id JOIN namespace u ON u.id = m.user_id
                       WHERE t.organization_id = o.id AND t.role = 'admin' AND m.user_id <> $1 AND u.enabled AND NOT u.deleted AND NOT u.robot)
     ORDER BY o.username`, [userId]);
  return rows.map((row) => row.username);
}

/**
 * Marks a user or organization for deletion. Returns the marker id, or undefined when it was
 * already marked. SoleAdminError for a user who alone administers an organization. Call inside a
 * transaction.
 */
export async function markNamespaceForDeletion(tx: Queryable, namespace: NamespaceRow, actor: DeletionActor): Promise<number | undefined> {
  const { rows: locked } = await tx.query<{ deleted: boolean }>(`SELECT deleted FROM namespace WHERE id = $1 FOR UPDATE`, [namespace.id]);
  if (!locked[0] || locked[0].deleted) return undefined;
  if (!namespace.organization) {
    const organizations = await soleAdminOrganizations(tx, namespace.id);
    if (organizations.length > 0) throw new SoleAdminError(namespace.username, organizations);
  }
  const { rows: markers } = await tx.query<{ id: number }>(
    `INSERT INTO deletednamespace (namespace_id, original_username, original_email) VALUES ($1, $2, $3) RETURNING id`,
    [namespace.id, namespace.username, namespace.email]);
  const markerId = markers[0]!.id;
  const hiddenName = randomUUID();
  await tx.query(`UPDATE namespace SET username = $2, email = NULL, enabled = false, deleted = true WHERE id = $1`, [namespace.id, hiddenName]);
  // Robots follow their namespace: same prefix, so the purge finds them under the new name.
  await tx.query(
    `UPDATE namespace SET username = $2 || substr(username, length($1) + 1), enabled = false, deleted = true
     WHERE robot AND left(username, length($1) + 1) = $1 || '+'`, [namespace.username, hiddenName]);
  await logAction(tx, actor.logs ?? NO_LOG_SKIPS, {
    kind: namespace.organization ? 'org_delete' : 'user_delete', namespace: { id: namespace.id, name: namespace.username }, performerId: actor.performerId,
    // Quay's keys: org_delete {namespace}, user_delete {username}.
    ip: actor.ip ?? null, metadata: namespace.organization ? { namespace: namespace.username } : { username: namespace.username },
  });
  const payload = { v: 1 as const, namespaceId: namespace.id, markerId, originalUsername: namespace.username };
  await enqueueInTransaction(tx, namespacegc, payload);
  await tx.query(`UPDATE deletednamespace SET queue_id = $2 WHERE id = $1`, [markerId, namespacegc.dedupeId(payload)]);
  return markerId;
}
