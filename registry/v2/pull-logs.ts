/**
 * Pull logs (`pull_repo`) off the manifest GET's hot path: each pull appends its entry to an
 * in-process buffer, and the buffer is written with one multi-row INSERT (`logActions`) when it
 * holds `maxBatch` entries or `flushMs` after its first entry, and on close. A pull therefore
 * never waits for its log, and 1000 pulls cost one round trip instead of 1000.
 *
 * Trade-off, stated: entries buffered when the process dies (SIGKILL, crash) are lost, at most
 * `flushMs` worth. Quay writes each pull log synchronously in the request. When the database is
 * unreachable the buffer keeps at most `maxPending` entries and counts what it drops.
 */
import type { ActionLog, LogSettings } from '../../shared/db/logs.ts';
import { logActions } from '../../shared/db/logs.ts';
import type { Queryable } from '../../shared/db/pool.ts';
import { client, metric } from '../../shared/metrics/index.ts';
import type { Logger } from '../../shared/runtime/logger.ts';

const dropped = metric('quayfleet_pull_logs_dropped_total', () => new client.Counter({
  name: 'quayfleet_pull_logs_dropped_total', help: 'pull logs dropped because the database could not take them in time',
}));

export interface PullLogBufferOptions {
  /** Entries per INSERT. */
  readonly maxBatch?: number;
  /** Longest an entry waits before its batch is written. */
  readonly flushMs?: number;
  /** Entries kept while the database is failing; newer ones are dropped (and counted). */
  readonly maxPending?: number;
}

/** Batches pull logs; `add` never blocks and never throws. */
export class PullLogBuffer {
  private pending: ActionLog[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private readonly maxBatch: number;
  private readonly flushMs: number;
  private readonly maxPending: number;

  constructor(
    private readonly db: Queryable,
    private readonly settings: LogSettings,
    private readonly log: Logger,
    options: PullLogBufferOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.flushMs = options.flushMs ?? 100;
    this.maxPending = options.maxPending ?? 50_000;
  }

  /** Queues one entry (the skip rules apply when it is written). */
  add(entry: ActionLog): void {
    if (this.pending.length >= this.maxPending) {
      dropped.inc();
      return;
    }
    this.pending.push(entry);
    if (this.pending.length >= this.maxBatch) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
  }

  /** Writes everything queued so far; resolves when it is written (or failed and was kept). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.writing) await this.writing;
    if (this.pending.length === 0) return;
    const batch = this.pending.splice(0, this.maxBatch);
    let failed = false;
    this.writing = logActions(this.db, this.settings, batch).then(() => undefined, (error: unknown) => {
      failed = true;
      // Kept for the next flush, oldest first, within maxPending.
      this.log.warn({ err: error, entries: batch.length }, 'pull logs not written; retrying with the next batch');
      const room = this.maxPending - this.pending.length;
      if (room < batch.length) dropped.inc(batch.length - Math.max(room, 0));
      this.pending.unshift(...batch.slice(0, Math.max(room, 0)));
      this.timer ??= setTimeout(() => void this.flush(), this.flushMs * 10);
    }).finally(() => {
      this.writing = undefined;
    });
    await this.writing;
    if (failed) return;
    if (this.pending.length >= this.maxBatch) await this.flush();
    else if (this.pending.length > 0) this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
  }

  /** Flushes and stops the timer (the app's onClose). */
  async close(): Promise<void> {
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
