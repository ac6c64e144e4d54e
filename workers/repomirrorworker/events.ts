/**
 * What a sync tells the world, as Quay's `emit_log` does: an action log entry per event with the
 * metadata keys verb, namespace, repo, message, tag, tags, stdout, stderr (all present, possibly
 * null), and for the three sync-level kinds one `notification` job per matching repository
 * notification, with Quay's event_data (`message`), through the shared producer
 * (shared/db/notifications.ts). Written in one transaction, through the outbox.
 */
import type { Config } from '../../shared/config/index.ts';
import { logAction } from '../../shared/db/logs.ts';
import { enqueueRepositoryEvent } from '../../shared/db/notifications.ts';
import { withTransaction, type Pool, type Queryable } from '../../shared/db/pool.ts';
import type { RepositoryRow } from '../../shared/db/repositories.ts';

export type MirrorLogKind =
  | 'repo_mirror_sync_started' | 'repo_mirror_sync_success' | 'repo_mirror_sync_failed'
  | 'repo_mirror_sync_tag_success' | 'repo_mirror_sync_tag_failed';

export interface MirrorEvent {
  readonly kind: MirrorLogKind;
  readonly verb: string;
  readonly message: string;
  readonly tag?: string | null;
  readonly tags?: string | null;
  readonly stdout?: string | null;
  readonly stderr?: string | null;
  /** Also notify (sync-level events, once per sync rather than per retry). */
  readonly notify: boolean;
}

/** Writes the log entry (and the notifications) of `event`, in its own transaction. */
export async function emitMirrorEvent(db: Pool, config: Config, repository: RepositoryRow, event: MirrorEvent): Promise<void> {
  await withTransaction(db, (tx) => writeMirrorEvent(tx, config, repository, event));
}

/** Writes the log entry (and the notifications) of `event` in the caller's transaction `tx`. */
export async function writeMirrorEvent(tx: Queryable, config: Config, repository: RepositoryRow, event: MirrorEvent): Promise<void> {
  {
    await logAction(tx, config.quay, {
      kind: event.kind, namespace: { id: repository.namespace_user_id, name: repository.namespace }, repositoryId: repository.id,
      metadata: {
        verb: event.verb, namespace: repository.namespace, repo: repository.name, message: event.message,
        tag: event.tag ?? null, tags: event.tags ?? null, stdout: event.stdout ?? null, stderr: event.stderr ?? null,
      },
    });
    if (event.notify) {
      const kind = event.kind as 'repo_mirror_sync_started' | 'repo_mirror_sync_success' | 'repo_mirror_sync_failed';
      await enqueueRepositoryEvent(tx, repository.id, kind, { message: event.message }, { site: config.quay });
    }
  }
}
