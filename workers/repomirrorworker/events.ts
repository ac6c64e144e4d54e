/**
 * What a sync tells the world, as Quay's `emit_log` does: an action log entry per event with the
 * metadata keys verb, namespace, repo, message, tag, tags, stdout, stderr (all present, possibly
 * null), and for the three sync-level kinds one `notification` job per matching repository
 * notification, with Quay's event_data (`message`). Written in one transaction, through the outbox.
 */
import { randomUUID } from 'node:crypto';
import { notification } from '../../queues/notification.ts';
import type { Config } from '../../shared/config/index.ts';
import { writeLog } from '../../shared/db/logs.ts';
import { enqueueInTransaction } from '../../shared/db/outbox.ts';
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

/** Quay's base event_data of a repository event (notifications/__init__.py). */
function eventData(config: Config, repository: RepositoryRow): Record<string, unknown> {
  const { SERVER_HOSTNAME: host, PREFERRED_URL_SCHEME: scheme } = config.quay;
  const full = `${repository.namespace}/${repository.name}`;
  return { repository: full, namespace: repository.namespace, name: repository.name, docker_url: `${host}/${full}`, homepage: `${scheme}://${host}/repository/${full}` };
}

async function notifyInTransaction(tx: Queryable, config: Config, repository: RepositoryRow, event: MirrorEvent): Promise<void> {
  const { rows } = await tx.query<{ uuid: string }>(
    `SELECT uuid::text AS uuid FROM repositorynotification WHERE repository_id = $1 AND event = $2 ORDER BY id`, [repository.id, event.kind]);
  const kind = event.kind as 'repo_mirror_sync_started' | 'repo_mirror_sync_success' | 'repo_mirror_sync_failed';
  for (const { uuid } of rows) {
    await enqueueInTransaction(tx, notification, {
      v: 1, notificationUuid: uuid, eventId: randomUUID(), event: kind,
      eventData: { ...eventData(config, repository), message: event.message }, performerData: {},
    });
  }
}

/** Writes the log entry (and the notifications) of `event`. */
export async function emitMirrorEvent(db: Pool, config: Config, repository: RepositoryRow, event: MirrorEvent): Promise<void> {
  await withTransaction(db, async (tx) => {
    await writeLog(tx, {
      kind: event.kind, accountId: repository.namespace_user_id, repositoryId: repository.id,
      metadata: {
        verb: event.verb, namespace: repository.namespace, repo: repository.name, message: event.message,
        tag: event.tag ?? null, tags: event.tags ?? null, stdout: event.stdout ?? null, stderr: event.stderr ?? null,
      },
    });
    if (event.notify) await notifyInTransaction(tx, config, repository, event);
  });
}
