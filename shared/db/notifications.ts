/**
 * Repository notification events, as producers raise them (Quay's spawn_notification,
 * reference §5.1): one `notification` job per matching, enabled `repositorynotification`, written
 * to the outbox of the caller's transaction, so the event exists if and only if the change that
 * caused it committed.
 *
 * Glossary
 * - event: what happened (`repo_push`, `repo_mirror_sync_success`, `vulnerability_found`, ...).
 * - event id: one id per event occurrence. Delivery is at most once per (notification, event id),
 *   so a producer that may raise the same occurrence twice (a retried sync) passes a stable id,
 *   e.g. `eventIdFor('mirror', repositoryId, syncStartedAt)`.
 * - enabled: fewer than NOTIFICATION_FAILURE_LIMIT consecutive failed deliveries (Quay's rule;
 *   a reset through the API re-enables).
 */
import { createHash, randomUUID } from 'node:crypto';
import { notification, type NOTIFICATION_EVENTS } from '../../queues/notification.ts';
import { enqueueManyInTransaction } from './outbox.ts';
import type { Queryable } from './pool.ts';

/** A notification event name (queues/notification.ts). */
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

/** Consecutive failed deliveries after which a notification is disabled until reset (Quay: 3). */
export const NOTIFICATION_FAILURE_LIMIT = 3;

/** The config keys a repository event's URLs are built from (pass `config.quay`). */
export interface SiteUrls {
  readonly SERVER_HOSTNAME: string;
  readonly PREFERRED_URL_SCHEME: string;
}

/** Quay's base event_data of a repository event, merged with the event's own fields. */
export function repositoryEventData(
  site: SiteUrls, namespace: string, name: string, extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const full = `${namespace}/${name}`;
  return {
    repository: full, namespace, name,
    docker_url: `${site.SERVER_HOSTNAME}/${full}`,
    homepage: `${site.PREFERRED_URL_SCHEME}://${site.SERVER_HOSTNAME}/repository/${full}`,
    ...extra,
  };
}

// A fixed namespace for name-based event ids (RFC 9562 UUIDv5).
const EVENT_ID_NAMESPACE = Buffer.from('6f1d3c2a9b7e4d5f8a0c1e2b3d4f5a6b', 'hex');

/** A stable event id (UUIDv5) for an occurrence named by `parts`: the same parts, the same id. */
export function eventIdFor(...parts: readonly (string | number)[]): string {
  const hash = createHash('sha1').update(EVENT_ID_NAMESPACE).update(parts.map(String).join('\u0000')).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** How an event is raised, beside its data. */
export interface RaiseOptions {
  /** SERVER_HOSTNAME and PREFERRED_URL_SCHEME, for the base event_data (`config.quay`). */
  readonly site: SiteUrls;
  /** Who caused it (`entity_id`, `entity_name`); empty for worker-originated events. */
  readonly performerData?: Record<string, unknown>;
  /** The occurrence's id; a random one when omitted (the occurrence cannot recur). */
  readonly eventId?: string;
}

/** One occurrence of an event in one repository, for `enqueueRepositoryEvents`. */
export interface RepositoryEventOccurrence {
  readonly repositoryId: number;
  /** The event's own fields; the base fields (repository, namespace, ...) are added. */
  readonly eventData: Record<string, unknown>;
  readonly eventId?: string;
  readonly performerData?: Record<string, unknown>;
}

/**
 * Raises `event` in repository `repositoryId`: one `notification` job per enabled repository
 * notification configured for that event, in `tx`'s outbox. `eventData` holds the event's own
 * fields (`updated_tags`, `message`, ...); the base fields are added. Returns the jobs' dedupe ids
 * (none when nothing is configured).
 */
export async function enqueueRepositoryEvent(
  tx: Queryable, repositoryId: number, event: NotificationEvent, eventData: Record<string, unknown>, options: RaiseOptions,
): Promise<string[]> {
  return enqueueRepositoryEvents(tx, event, [{ repositoryId, eventData, eventId: options.eventId, performerData: options.performerData }], options);
}

/**
 * Raises `event` once per occurrence, for many repositories at once: one indexed query for the
 * targets of all of them, one outbox INSERT. Returns the jobs' dedupe ids.
 */
export async function enqueueRepositoryEvents(
  tx: Queryable, event: NotificationEvent, occurrences: readonly RepositoryEventOccurrence[],
  options: {
    site: SiteUrls;
    /** Only this notification uuid (Quay's `notification_uuid` narrowing). */
    onlyNotification?: string;
    /** Whether a notification's event config wants an occurrence (e.g. its minimum severity); default all. */
    accepts?: (eventConfig: Record<string, unknown>, occurrence: RepositoryEventOccurrence) => boolean;
  },
): Promise<string[]> {
  if (occurrences.length === 0) return [];
  const repositoryIds = [...new Set(occurrences.map((o) => o.repositoryId))];
  const { rows } = await tx.query<{ repository_id: number; uuid: string; namespace: string; name: string; event_config_json: Record<string, unknown> | null }>(
    `SELECT n.repository_id, n.uuid::text AS uuid, ns.username AS namespace, r.name, n.event_config_json
     FROM repositorynotification n
     JOIN repository r ON r.id = n.repository_id
     JOIN namespace ns ON ns.id = r.namespace_user_id
     WHERE n.repository_id = ANY($1::bigint[]) AND n.event = $2 AND n.number_of_failures < $3 AND ($4::uuid IS NULL OR n.uuid = $4)
     ORDER BY n.id`,
    [repositoryIds, event, NOTIFICATION_FAILURE_LIMIT, options.onlyNotification ?? null]);
  if (rows.length === 0) return [];
  const targets = new Map<number, typeof rows>();
  for (const row of rows) {
    const list = targets.get(row.repository_id) ?? [];
    list.push(row);
    targets.set(row.repository_id, list);
  }
  const payloads = occurrences.flatMap((occurrence) => {
    const eventId = occurrence.eventId ?? randomUUID();
    const wanted = (targets.get(occurrence.repositoryId) ?? []).filter((target) => options.accepts?.(target.event_config_json ?? {}, occurrence) ?? true);
    return wanted.map((target) => ({
      v: 1 as const,
      notificationUuid: target.uuid,
      eventId,
      event,
      eventData: repositoryEventData(options.site, target.namespace, target.name, occurrence.eventData),
      performerData: occurrence.performerData ?? {},
    }));
  });
  return enqueueManyInTransaction(tx, notification, payloads);
}

/** A `repositorynotification` row as the API shows it. */
export interface RepositoryNotificationRow {
  readonly id: number;
  readonly uuid: string;
  readonly repository_id: number;
  readonly event: string;
  readonly method: string;
  readonly title: string | null;
  readonly config_json: Record<string, unknown>;
  readonly event_config_json: Record<string, unknown>;
  readonly number_of_failures: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The statements of one notification table. `repositorynotification` and `namespacenotification`
 * differ only in their owner column, so one set serves both; table and column are constants
 * below, never input.
 */
function notificationTable<Row>(table: string, owner: string) {
  const columns = `id, uuid::text AS uuid, ${owner}, event, method, title, config_json, event_config_json, number_of_failures`;
  const one = async (db: Queryable, sql: string, params: unknown[]): Promise<Row | undefined> =>
    (await db.query<Row & Record<string, unknown>>(sql, params)).rows[0];
  return {
    /** The notifications of an owner, oldest first. */
    async list(db: Queryable, ownerId: number): Promise<Row[]> {
      const { rows } = await db.query<Row & Record<string, unknown>>(`SELECT ${columns} FROM ${table} WHERE ${owner} = $1 ORDER BY id`, [ownerId]);
      return rows;
    },
    /** The owner's notification `uuid`; undefined when absent, another owner's, or not a UUID. */
    find(db: Queryable, ownerId: number, uuid: string): Promise<Row | undefined> {
      if (!UUID.test(uuid)) return Promise.resolve(undefined);
      return one(db, `SELECT ${columns} FROM ${table} WHERE ${owner} = $1 AND uuid = $2`, [ownerId, uuid]);
    },
    /** Creates a notification (enabled, no failures). */
    async create(db: Queryable, ownerId: number, input: NotificationInput): Promise<Row> {
      return (await one(db,
        `INSERT INTO ${table} (${owner}, event, method, config_json, event_config_json, title)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${columns}`,
        [ownerId, input.event, input.method, JSON.stringify(input.config), JSON.stringify(input.eventConfig), input.title]))!;
    },
    /** Deletes the owner's notification; returns it, or undefined when it did not exist. */
    delete(db: Queryable, ownerId: number, uuid: string): Promise<Row | undefined> {
      if (!UUID.test(uuid)) return Promise.resolve(undefined);
      return one(db, `DELETE FROM ${table} WHERE ${owner} = $1 AND uuid = $2 RETURNING ${columns}`, [ownerId, uuid]);
    },
    /** Quay's reset: the failure count back to 0, which re-enables a disabled notification. */
    resetFailures(db: Queryable, ownerId: number, uuid: string): Promise<Row | undefined> {
      if (!UUID.test(uuid)) return Promise.resolve(undefined);
      return one(db, `UPDATE ${table} SET number_of_failures = 0 WHERE ${owner} = $1 AND uuid = $2 RETURNING ${columns}`, [ownerId, uuid]);
    },
  };
}

/** What a new notification holds, whichever its owner. */
interface NotificationInput {
  readonly event: NotificationEvent;
  readonly method: string;
  readonly config: Record<string, unknown>;
  readonly eventConfig: Record<string, unknown>;
  readonly title: string | null;
}

/** What a new repository notification holds. */
export interface NewRepositoryNotification extends NotificationInput {
  readonly repositoryId: number;
}

/** A `namespacenotification` row (quota events of an organization or user) as the API shows it. */
export interface NamespaceNotificationRow extends Omit<RepositoryNotificationRow, 'repository_id'> {
  readonly namespace_id: number;
}

const repositoryNotifications = notificationTable<RepositoryNotificationRow>('repositorynotification', 'repository_id');
const namespaceNotifications = notificationTable<NamespaceNotificationRow>('namespacenotification', 'namespace_id');

export const listRepositoryNotifications = repositoryNotifications.list;
export const findRepositoryNotification = repositoryNotifications.find;
export const deleteRepositoryNotification = repositoryNotifications.delete;
export const resetRepositoryNotificationFailures = repositoryNotifications.resetFailures;
export function createRepositoryNotification(db: Queryable, input: NewRepositoryNotification): Promise<RepositoryNotificationRow> {
  return repositoryNotifications.create(db, input.repositoryId, input);
}

export const listNamespaceNotifications = namespaceNotifications.list;
export const findNamespaceNotification = namespaceNotifications.find;
export const deleteNamespaceNotification = namespaceNotifications.delete;
export const resetNamespaceNotificationFailures = namespaceNotifications.resetFailures;
export function createNamespaceNotification(
  db: Queryable, input: NotificationInput & { readonly namespaceId: number },
): Promise<NamespaceNotificationRow> {
  return namespaceNotifications.create(db, input.namespaceId, input);
}
