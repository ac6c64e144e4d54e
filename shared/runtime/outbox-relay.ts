/**
 * The outbox relay: moves committed outbox rows (shared/db/outbox.ts) to BullMQ.
 *
 * It wakes on Postgres NOTIFY (`quayfleet_outbox`, sent by a trigger on every insert) through a
 * dedicated LISTEN connection, on `wake()` from a producer in the same process, on reconnecting,
 * and on a slow safety timer; it never polls in a loop. Each pass claims a batch with
 * `FOR UPDATE SKIP LOCKED`, publishes it with `addBulk` (job id = dedupe id, delay = run_at - now),
 * deletes the rows and commits, repeating while batches come back full.
 *
 * Guarantees:
 * - crash after the producer's commit, before publishing: the rows wait; the next relay publishes;
 * - crash after publishing, before the delete commits: the rows are published again, and the
 *   dedupe id makes that a no-op while the first job is still kept (a job already completed and
 *   removed runs again, which is safe because every job is idempotent);
 * - several relays (one per producing process) never publish the same row concurrently;
 * - a row whose dedupe id belongs to a dead-lettered job replaces that job: the row is a committed
 *   change asking for the work again, which the dead letter must not swallow for the week it is
 *   kept (a crash-republished row may so give a job that just failed one more run; jobs are
 *   idempotent).
 */
import type pg from 'pg';
import { contractFor, QUEUES } from '../../queues/index.ts';
import { claimOutboxBatch, deleteOutboxRows, type OutboxRow } from '../db/outbox.ts';
import { createClient, withTransaction, type Pool } from '../db/pool.ts';
import type { Logger } from './logger.ts';
import type { Producer } from './producer.ts';
import { queueItemPuts } from './runtime-metrics.ts';

/** The channel the outbox trigger notifies. */
export const OUTBOX_CHANNEL = 'quayfleet_outbox';

/** What the relay needs. */
export interface OutboxRelayOptions {
  /** Pool the batches are claimed through. */
  readonly db: Pool;
  /** Postgres URL for the relay's own LISTEN connection (a pooled client cannot hold LISTEN). */
  readonly connectionString: string;
  /** Where jobs are published; the relay does not close it. */
  readonly producer: Producer;
  readonly log: Logger;
  /** Rows per transaction. Default 500. */
  readonly batchSize?: number;
  /** Safety-net pass interval, for a lost notification. Default 10 s. */
  readonly safetyIntervalMs?: number;
}

/** A running relay. */
export interface OutboxRelay {
  /** Asks for a pass now (coalesced with one already running); for co-located producers. */
  wake(): void;
  /** Runs passes until the outbox has nothing this relay can claim; resolves with rows published. */
  drain(): Promise<number>;
  /** Rows this relay has published since it started. */
  readonly published: number;
  /** Stops listening and waits for the pass in progress. Safe to call twice. */
  stop(): Promise<void>;
}

// A Postgres restart lasts seconds: retry often enough that publishing resumes soon after it.
const RECONNECT_MAX_MS = 5_000;

/** Starts a relay; resolves once it listens (a first pass is already under way). */
export async function startOutboxRelay(options: OutboxRelayOptions): Promise<OutboxRelay> {
  const relay = new Relay(options);
  await relay.listen();
  return relay;
}

class Relay implements OutboxRelay {
  published = 0;
  private readonly batchSize: number;
  private readonly queueNames = Object.keys(QUEUES);
  private stopped = false;
  private pass: Promise<void> | undefined;
  private again = false;
  private failures = 0;
  /** The LISTEN connection being opened or listening; undefined while a reconnect waits. */
  private current: pg.Client | undefined;
  private readonly lost = new WeakSet<pg.Client>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly safetyTimer: NodeJS.Timeout;

  constructor(private readonly options: OutboxRelayOptions) {
    this.batchSize = options.batchSize ?? 500;
    this.safetyTimer = setInterval(() => this.wake(), options.safetyIntervalMs ?? 10_000);
    this.safetyTimer.unref();
  }

  wake(): void {
    if (this.stopped) return;
    if (this.pass) {
      this.again = true;
      return;
    }
    this.pass = this.runPasses().finally(() => { this.pass = undefined; });
  }

  async drain(): Promise<number> {
    const before = this.published;
    while (this.pass) await this.pass;
    while (!this.stopped && (await this.publishBatch()) === this.batchSize);
    return this.published - before;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.safetyTimer);
    for (const timer of this.timers) clearTimeout(timer);
    const listener = this.current;
    this.current = undefined;
    await listener?.end().catch(() => undefined);
    await this.pass;
  }

  /**
   * Opens the LISTEN connection; on failure schedules a reconnect (and still returns). At most one
   * connection is being opened or listening at any time (`current`): a loss reported twice, or by
   * a connection already replaced, never starts a second reconnect chain.
   */
  async listen(): Promise<void> {
    if (this.stopped || this.current) return;
    const client = createClient({ connectionString: this.options.connectionString, applicationName: 'quayfleet-outbox-relay' });
    this.current = client;
    client.on('notification', () => this.wake());
    client.on('error', (error) => this.lostListener(client, error));
    client.on('end', () => this.lostListener(client, undefined));
    try {
      await client.connect();
      await client.query(`LISTEN ${OUTBOX_CHANNEL}`);
      if (this.current === client) this.failures = 0;
    } catch (error) {
      this.lostListener(client, error);
    }
    // Rows written while nobody listened (before start, during a reconnect) are published now.
    this.wake();
  }

  private lostListener(client: pg.Client, error: unknown): void {
    // A connection lost during LISTEN both rejects the query and emits 'error': handle it once.
    if (this.lost.has(client)) return;
    this.lost.add(client);
    client.removeAllListeners('end');
    client.removeAllListeners('notification');
    client.on('error', () => undefined);
    client.end().catch(() => undefined);
    if (this.current !== client) return;
    this.current = undefined;
    if (this.stopped) return;
    this.options.log.warn({ err: error }, 'outbox relay lost its LISTEN connection; reconnecting');
    this.later(() => void this.listen());
  }

  /** Runs `fn` after an exponential backoff (100 ms doubling to 5 s) unless stopped first. */
  private later(fn: () => void): void {
    const delay = Math.min(RECONNECT_MAX_MS, 100 * 2 ** Math.min(this.failures++, 10));
    const timer = setTimeout(() => { this.timers.delete(timer); if (!this.stopped) fn(); }, delay);
    this.timers.add(timer);
  }

  private async runPasses(): Promise<void> {
    do {
      this.again = false;
      try {
        while (!this.stopped && (await this.publishBatch()) === this.batchSize);
        this.failures = 0;
      } catch (error) {
        this.options.log.error({ err: error }, 'outbox relay pass failed; retrying');
        this.later(() => this.wake());
        return;
      }
    } while (this.again && !this.stopped);
  }

  /** One transaction: claim, publish, delete, commit. Returns the rows published. */
  private async publishBatch(): Promise<number> {
    const count = await withTransaction(this.options.db, async (tx) => {
      const rows = await claimOutboxBatch(tx, this.queueNames, this.batchSize);
      if (rows.length === 0) return 0;
      await this.publish(rows);
      await deleteOutboxRows(tx, rows.map((row) => row.id));
      return rows.length;
    });
    this.published += count;
    return count;
  }

  private async publish(rows: readonly OutboxRow[]): Promise<void> {
    const byQueue = new Map<string, OutboxRow[]>();
    for (const row of rows) {
      const group = byQueue.get(row.queueName);
      if (group) group.push(row);
      else byQueue.set(row.queueName, [row]);
    }
    for (const [queueName, queueRows] of byQueue) {
      const jobOptions = contractFor(queueName)!.jobOptions;
      // A committed change asked for this work again: a dead letter with its id gives way to it.
      const revived = await this.options.producer.reviveDeadLetters(queueName, queueRows.map((row) => row.jobId));
      if (revived.length > 0) this.options.log.info({ queue_name: queueName, jobIds: revived.slice(0, 20), count: revived.length }, 'outbox relay replaced dead-lettered jobs');
      await this.options.producer.queue(queueName).addBulk(queueRows.map((row) => ({
        name: queueName,
        data: row.payload,
        opts: { ...jobOptions, jobId: row.jobId, delay: row.delayMs },
      })));
      queueItemPuts.labels({ queue_name: queueName }).inc(queueRows.length);
    }
  }
}
