/**
 * The notification a job delivers to (a `repositorynotification` or, for `notificationType:
 * "namespace"`, a `namespacenotification` row), and Quay's failure counter on it: +1 per failed
 * delivery, back to 0 on success, disabled at NOTIFICATION_FAILURE_LIMIT until reset.
 */
import { NOTIFICATION_FAILURE_LIMIT } from '../../shared/db/notifications.ts';
import type { Queryable } from '../../shared/db/pool.ts';
import { NOTIFICATION_METHODS } from '../../shared/notifications/methods.ts';

/** A configured notification with the names its methods need. */
export interface NotificationTarget {
  readonly kind: 'repository' | 'namespace';
  readonly uuid: string;
  readonly event: string;
  readonly method: string;
  readonly title: string | null;
  readonly config: Record<string, unknown>;
  readonly eventConfig: Record<string, unknown>;
  readonly numberOfFailures: number;
  readonly namespaceId: number;
  readonly namespace: string;
  /** The namespace's e-mail address (an organization's contact address). */
  readonly namespaceEmail: string | null;
  readonly repositoryId: number | null;
}

type TargetRow = {
  uuid: string; event: string; method: string; title: string | null; config_json: Record<string, unknown>;
  event_config_json: Record<string, unknown>; number_of_failures: number; namespace_id: number; namespace: string;
  email: string | null; repository_id: number | null;
};

const TABLES = {
  repository: {
    table: 'repositorynotification',
    from: `repositorynotification n JOIN repository r ON r.id = n.repository_id JOIN namespace ns ON ns.id = r.namespace_user_id`,
    repositoryId: 'n.repository_id',
  },
  namespace: {
    table: 'namespacenotification',
    from: `namespacenotification n JOIN namespace ns ON ns.id = n.namespace_id`,
    repositoryId: 'NULL::bigint',
  },
} as const;

function targetOf(kind: 'repository' | 'namespace', row: TargetRow): NotificationTarget {
  return {
    kind, uuid: row.uuid, event: row.event, method: row.method, title: row.title, config: row.config_json ?? {},
    eventConfig: row.event_config_json ?? {}, numberOfFailures: row.number_of_failures, namespaceId: row.namespace_id,
    namespace: row.namespace, namespaceEmail: row.email, repositoryId: row.repository_id,
  };
}

/**
 * The notification `uuid` of `kind`, disabled or not (undefined when it was deleted), and, in the
 * same statement, `claimDelivery`'s insert when `claimNow` and the notification is enabled with a
 * known method: one round trip for the common case. `claimed` is
 * true only when the record was inserted (or a `failed` one taken back); otherwise the caller
 * still runs `claimDelivery`, which tells a duplicate from an in-doubt delivery.
 */
export async function loadTargetAndClaim(
  db: Queryable, kind: 'repository' | 'namespace', uuid: string, eventId: string, claimNow: boolean,
): Promise<{ target: NotificationTarget | undefined; claimed: boolean }> {
  const t = TABLES[kind];
  const { rows: [row] } = await db.query<TargetRow & { claimed: boolean }>(
    `WITH target AS (
       SELECT n.uuid::text AS uuid, n.event, n.method, n.title, n.config_json, n.event_config_json, n.number_of_failures,
              ns.id AS namespace_id, ns.username AS namespace, ns.email, ${t.repositoryId} AS repository_id
       FROM ${t.from} WHERE n.uuid = $1),
     claim AS (
       INSERT INTO notificationdelivery AS d (notification_uuid, event_id, state)
       SELECT $1::uuid, $2::uuid, 'sending' FROM target WHERE $3 AND target.number_of_failures < $4 AND target.method = ANY($5::text[])
       ON CONFLICT (notification_uuid, event_id) DO UPDATE SET state = 'sending', attempts = d.attempts + 1, updated = now()
         WHERE d.state = 'failed'
       RETURNING 1)
     SELECT target.*, EXISTS (SELECT 1 FROM claim) AS claimed FROM target`,
    [uuid, eventId, claimNow, NOTIFICATION_FAILURE_LIMIT, NOTIFICATION_METHODS]);
  return { target: row && targetOf(kind, row), claimed: row?.claimed ?? false };
}

/** Whether failures disabled `target` (Quay's get_enabled_notification misses it). */
export function isDisabled(target: Pick<NotificationTarget, 'numberOfFailures'>): boolean {
  return target.numberOfFailures >= NOTIFICATION_FAILURE_LIMIT;
}

/** Counts one more consecutive failure; returns the new count (undefined when the row is gone). */
export async function countFailure(db: Queryable, kind: 'repository' | 'namespace', uuid: string): Promise<number | undefined> {
  const { rows: [row] } = await db.query<{ number_of_failures: number }>(
    `UPDATE ${TABLES[kind].table} SET number_of_failures = number_of_failures + 1 WHERE uuid = $1 RETURNING number_of_failures`, [uuid]);
  return row?.number_of_failures;
}

/**
 * A success, in one statement: the delivery record of `eventId` becomes `delivered`, the failure
 * count goes back to 0 and `last_ran_ms` records when. The notification row is written only when
 * that changes something visible (failures to clear, or `last_ran_ms` a second old), so a burst
 * of deliveries to one notification does not queue on its row lock.
 */
export async function countSuccess(db: Queryable, kind: 'repository' | 'namespace', uuid: string, eventId: string, atMs: number): Promise<void> {
  await db.query(
    `WITH delivered AS (
       UPDATE notificationdelivery SET state = 'delivered', last_error = NULL, updated = now() WHERE notification_uuid = $1 AND event_id = $3)
     UPDATE ${TABLES[kind].table} SET number_of_failures = 0, last_ran_ms = $2::bigint
     WHERE uuid = $1 AND (number_of_failures <> 0 OR last_ran_ms IS NULL OR last_ran_ms < $2::bigint - 1000)`, [uuid, atMs, eventId]);
}

/** Disabled notifications by method, across both tables (the disabled gauge). */
export async function countDisabled(db: Queryable): Promise<{ method: string; count: number }[]> {
  const { rows } = await db.query<{ method: string; count: number }>(
    `SELECT method, count(*)::bigint AS count FROM (
       SELECT method FROM repositorynotification WHERE number_of_failures >= $1
       UNION ALL SELECT method FROM namespacenotification WHERE number_of_failures >= $1) d
     GROUP BY method`, [NOTIFICATION_FAILURE_LIMIT]);
  return rows;
}
