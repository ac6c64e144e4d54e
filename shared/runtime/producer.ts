/**
 * Direct enqueueing, for work that does not need to be atomic with a database change: a worker
 * fanning out (the GC sweep enqueuing one job per repository), admin commands, tests. Work that
 * must happen if and only if a transaction commits goes through the outbox instead
 * (shared/db/outbox.ts).
 */
import { Queue } from 'bullmq';
import type { QueueContract, VersionedPayload } from '../../queues/contract.ts';
import { reviveDeadLetters } from './dead-letters.ts';
import { connectRedis, queuePrefix, type RedisSettings } from './redis.ts';
import { queueItemPuts } from './runtime-metrics.ts';

/** When a job becomes runnable: after `delayMs`, or at `runAt`; now when neither is given. */
export interface EnqueueOptions {
  readonly delayMs?: number;
  readonly runAt?: Date;
}

/** Publishes validated payloads to their queues. */
export interface Producer {
  /**
   * Validates `payload` (throws InvalidPayloadError), adds it under its dedupe id with the
   * contract's job options, and returns the id. A job with that id already waiting, delayed,
   * active or completed makes this a no-op that still returns the id; a dead-lettered one is
   * replaced by the new job, so a reconciler can retry work that failed.
   */
  enqueue<P extends VersionedPayload>(contract: QueueContract<P>, payload: P, options?: EnqueueOptions): Promise<string>;
  /**
   * Removes those of `jobIds` that are dead letters of `queueName`, so adding them next makes
   * fresh jobs (the outbox relay does so before publishing); returns the ids removed.
   */
  reviveDeadLetters(queueName: string, jobIds: readonly string[]): Promise<string[]>;
  /** The BullMQ queue handle for `queueName` (created on first use, shared, closed by `close`). */
  queue(queueName: string): Queue;
  /** Closes every queue handle and the shared connection. Safe to call twice. */
  close(): Promise<void>;
}

/** Milliseconds until the job should run, never negative. */
export function delayFor(options: EnqueueOptions | undefined, now = Date.now()): number {
  if (options?.runAt) return Math.max(0, options.runAt.getTime() - now);
  return Math.max(0, options?.delayMs ?? 0);
}

/** A producer over one shared Redis connection. */
export function createProducer(settings: RedisSettings): Producer {
  // One connection for every queue handle: a process enqueuing to a few queues needs no more.
  const connection = connectRedis(settings, { maxRetriesPerRequest: null });
  const queues = new Map<string, Queue>();
  let closing: Promise<void> | undefined;

  const queue = (queueName: string): Queue => {
    let handle = queues.get(queueName);
    if (!handle) {
      handle = new Queue(queueName, { connection, prefix: queuePrefix(settings, queueName) });
      handle.on('error', () => undefined); // surfaced by the failing call itself
      queues.set(queueName, handle);
    }
    return handle;
  };

  return {
    queue,
    reviveDeadLetters: (queueName, jobIds) => reviveDeadLetters(connection, queue(queueName), jobIds),
    async enqueue(contract, payload, options) {
      const data = contract.parse(payload);
      const jobId = contract.dedupeId(data);
      await reviveDeadLetters(connection, queue(contract.name), [jobId]);
      await queue(contract.name).add(contract.name, data, { ...contract.jobOptions, jobId, delay: delayFor(options) });
      queueItemPuts.labels({ queue_name: contract.name }).inc();
      return jobId;
    },
    close() {
      closing ??= (async () => {
        await Promise.all([...queues.values()].map((q) => q.close()));
        connection.disconnect();
      })();
      return closing;
    },
  };
}
