/**
 * The transactional outbox. A change that creates work writes the job intent here, in the same
 * transaction as the change itself; the outbox relay (shared/runtime/outbox-relay.ts) publishes
 * committed rows to BullMQ under their dedupe id and deletes them. So the job exists if and only
 * if the change committed, and a crash anywhere between commit and publish loses nothing.
 */
import type { QueueContract, VersionedPayload } from '../../queues/contract.ts';
import type { Queryable } from './pool.ts';

/** When an outbox job becomes runnable; now when omitted. */
export interface OutboxOptions {
  /** E.g. the moment a deleted tag leaves the namespace's time machine. */
  readonly runAt?: Date;
}

/**
 * Validates `payload` (throws InvalidPayloadError before touching the database) and records it
 * for `contract`'s queue in the caller's transaction. Returns the job's dedupe id.
 */
export async function enqueueInTransaction<P extends VersionedPayload>(
  tx: Queryable, contract: QueueContract<P>, payload: P, options: OutboxOptions = {},
): Promise<string> {
  const [jobId] = await enqueueManyInTransaction(tx, contract, [payload], options);
  return jobId!;
}

/** Like enqueueInTransaction for many payloads of one queue, in one INSERT; returns their ids. */
export async function enqueueManyInTransaction<P extends VersionedPayload>(
  tx: Queryable, contract: QueueContract<P>, payloads: readonly P[], options: OutboxOptions = {},
): Promise<string[]> {
  if (payloads.length === 0) return [];
  const data = payloads.map((payload) => contract.parse(payload));
  const jobIds = data.map((payload) => contract.dedupeId(payload));
  await tx.query(
    `INSERT INTO outbox (queue_name, job_id, payload, run_at)
     SELECT $1, job_id, payload, COALESCE($4::timestamptz, now())
     FROM unnest($2::text[], $3::jsonb[]) AS t(job_id, payload)`,
    [contract.name, jobIds, data.map((payload) => JSON.stringify(payload)), options.runAt ?? null],
  );
  return jobIds;
}

/** An outbox row claimed by a relay. */
export interface OutboxRow {
  readonly id: number;
  readonly queueName: string;
  readonly jobId: string;
  readonly payload: unknown;
  /** Milliseconds until `run_at` by the database clock (0 when due), the BullMQ delay. */
  readonly delayMs: number;
}

/**
 * Locks up to `limit` rows of the queues `queueNames`, oldest first, skipping rows another relay
 * holds, so relays in several processes share the backlog without waiting on each other. Call in
 * a transaction; the locks last until it ends. Rows of queues this relay does not know (a newer
 * producer during a rolling deploy) are left for a relay that does.
 */
export async function claimOutboxBatch(tx: Queryable, queueNames: readonly string[], limit: number): Promise<OutboxRow[]> {
  const { rows } = await tx.query<{ id: number; queue_name: string; job_id: string; payload: unknown; delay_ms: number }>(
    `SELECT id, queue_name, job_id, payload,
            GREATEST(0, CEIL(EXTRACT(EPOCH FROM (run_at - clock_timestamp())) * 1000))::bigint AS delay_ms
     FROM outbox
     WHERE queue_name = ANY($1::text[])
     ORDER BY id
     LIMIT $2
     FOR UPDATE SKIP LOCKED`,
    [queueNames, limit],
  );
  return rows.map((row) => ({ id: row.id, queueName: row.queue_name, jobId: row.job_id, payload: row.payload, delayMs: row.delay_ms }));
}

/** Deletes published rows (by id); call in the transaction that claimed them. */
export async function deleteOutboxRows(tx: Queryable, ids: readonly number[]): Promise<void> {
  if (ids.length > 0) await tx.query('DELETE FROM outbox WHERE id = ANY($1::bigint[])', [ids]);
}

/** Rows waiting in the outbox (all queues), for status and tests. */
export async function countOutboxRows(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ count: number }>('SELECT count(*)::bigint AS count FROM outbox');
  return rows[0]!.count;
}
