/**
 * The delivery record (`notificationdelivery`) that makes a (notification, event id) reach its
 * target at most once, even when a worker dies mid-request:
 *
 * 1. `claimDelivery` inserts the record as `sending` (or moves a `failed` one back to `sending`)
 *    and commits, before anything is sent;
 * 2. the method sends;
 * 3. `countSuccess` (targets.ts) marks it `delivered` together with the notification's count, or
 *    `finishDelivery` marks it `failed` when the send failed for certain.
 *
 * A later run of the same job (BullMQ redelivers a job whose worker died) finds the record: if it
 * is `delivered`, nothing to do; if it is still `sending`, its predecessor died between 1 and 3 and
 * the target may have received the event, so it is marked `in_doubt` and not sent again. Only a
 * `failed` record is sent again. The price of at most once: an event whose worker died before
 * the request left is not delivered (counted as `in_doubt`).
 */
import type { Queryable } from '../../shared/db/pool.ts';

/** What a claim found: go ahead (`claimed`), or why not. */
export type Claim = 'claimed' | 'duplicate' | 'in_doubt';

/** Records the intent to send; only 'claimed' may send. Run outside any transaction (it must commit first). */
export async function claimDelivery(db: Queryable, notificationUuid: string, eventId: string): Promise<Claim> {
  const { rowCount } = await db.query(
    `INSERT INTO notificationdelivery AS d (notification_uuid, event_id, state) VALUES ($1, $2, 'sending')
     ON CONFLICT (notification_uuid, event_id) DO UPDATE SET state = 'sending', attempts = d.attempts + 1, updated = now()
       WHERE d.state = 'failed'`, [notificationUuid, eventId]);
  if (rowCount === 1) return 'claimed';
  const { rows: [row] } = await db.query<{ state: string }>(
    `UPDATE notificationdelivery SET state = CASE WHEN state = 'sending' THEN 'in_doubt' ELSE state END, updated = now()
     WHERE notification_uuid = $1 AND event_id = $2 RETURNING state`, [notificationUuid, eventId]);
  return row?.state === 'delivered' ? 'duplicate' : 'in_doubt';
}

/** Records how the send ended. */
export async function finishDelivery(db: Queryable, notificationUuid: string, eventId: string, outcome: { error?: string }): Promise<void> {
  await db.query(
    `UPDATE notificationdelivery SET state = $3, last_error = $4, updated = now() WHERE notification_uuid = $1 AND event_id = $2`,
    [notificationUuid, eventId, outcome.error === undefined ? 'delivered' : 'failed', outcome.error?.slice(0, 2000) ?? null]);
}

/** The state of a delivery record, for tests and operators. */
export async function deliveryState(db: Queryable, notificationUuid: string, eventId: string): Promise<{ state: string; attempts: number } | undefined> {
  const { rows: [row] } = await db.query<{ state: string; attempts: number }>(
    `SELECT state, attempts FROM notificationdelivery WHERE notification_uuid = $1 AND event_id = $2`, [notificationUuid, eventId]);
  return row;
}

/** Records older than `olderThanDays` go, at most `limit` per call (kept long past any redelivery). */
export async function pruneDeliveries(db: Queryable, olderThanDays = 30, limit = 1000): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM notificationdelivery WHERE ctid = ANY (ARRAY(
       SELECT ctid FROM notificationdelivery WHERE updated < now() - make_interval(days => $1) LIMIT $2))`, [olderThanDays, limit]);
  return rowCount ?? 0;
}
