/**
 * `quayfleet replication backfill` and `quayfleet replication status`, as functions of a pool and a
 * producer so they run the same in the CLI and in tests.
 *
 * Backfill (Quay's util/backfillreplication.py, which walks every ManifestBlob in one pass): pages
 * `imagestorage` by id, finds the blobs some required location lacks, and enqueues a job for each
 * one without a live job, reporting each queued digest. It resumes nowhere because it needs to:
 * a second run skips blobs already queued, and after the queue drained it finds nothing.
 */
import type { Queue } from 'bullmq';
import { imagestoragereplication } from '../../queues/imagestoragereplication.ts';
import type { Pool } from '../../shared/db/pool.ts';
import { findMissingBlobs, replicationStatus, type LocationStatus } from '../../shared/db/replication.ts';
import type { Producer } from '../../shared/runtime/producer.ts';

/** Blobs examined per page. */
const PAGE = 1000;
/** BullMQ states of a job that will still run. */
const LIVE_STATES = ['waiting', 'wait', 'delayed', 'active', 'prioritized', 'paused', 'waiting-children'] as const;

/** What backfill reports while it runs. */
export interface BackfillListener {
  /** Once, before the first page: the highest blob id (the progress bar's total). */
  start?(maxId: number): void;
  /** After each page: the last blob id examined. */
  progress?(lastId: number, queued: number): void;
  /** A blob whose job was just enqueued. */
  queued(blob: { digest: string; missing: readonly string[] }): void;
}

/** Enqueues replication of every blob a required location lacks and no live job covers; returns the count. */
export async function backfillReplication(
  pool: Pool, producer: Producer, input: { defaultLocations: readonly string[]; locations: readonly string[]; listener: BackfillListener; pageSize?: number },
): Promise<{ examined: number; queued: number }> {
  const queue = producer.queue(imagestoragereplication.name);
  const { rows: [bounds] } = await pool.query<{ max: number | null; count: number }>(`SELECT max(id) AS max, count(*)::int AS count FROM imagestorage`);
  input.listener.start?.(bounds?.max ?? 0);
  let afterId = 0;
  let queued = 0;
  for (;;) {
    const page = await findMissingBlobs(pool, { afterId, limit: input.pageSize ?? PAGE, defaultLocations: input.defaultLocations, locations: input.locations });
    for (const blob of page.blobs) {
      const payload = { v: 1 as const, storageId: blob.id, namespaceId: blob.namespaceId, digest: blob.digest };
      const job = await queue.getJob(imagestoragereplication.dedupeId(payload));
      const state = job ? await job.getState() : undefined;
      if (state && (LIVE_STATES as readonly string[]).includes(state)) continue; // Quay's `alive` check
      // A dead-lettered (or kept) job holds the id: remove it, or the new one would be a no-op.
      if (job) await job.remove();
      await producer.enqueue(imagestoragereplication, payload);
      queued += 1;
      input.listener.queued(blob);
    }
    if (page.nextAfterId === undefined) break;
    afterId = page.nextAfterId;
    input.listener.progress?.(afterId, queued);
  }
  return { examined: bounds?.count ?? 0, queued };
}

/** Blob ids with a job in `states`, read from the job ids (`imagestoragereplication/<id>`). */
async function blobIdsIn(queue: Queue, states: readonly string[]): Promise<number[]> {
  const ids = await queue.getRanges(states as Parameters<Queue['getRanges']>[0], 0, -1);
  return ids.map((id) => /^imagestoragereplication\/(\d+)$/.exec(id)?.[1]).filter((id): id is string => id !== undefined).map(Number);
}

/** Per location: held, bytes, missing, queued (live job), failed (dead-lettered job). */
export async function replicationStatusReport(pool: Pool, producer: Producer, defaultLocations: readonly string[]): Promise<LocationStatus[]> {
  const queue = producer.queue(imagestoragereplication.name);
  const [queuedIds, failedIds] = await Promise.all([blobIdsIn(queue, LIVE_STATES), blobIdsIn(queue, ['failed'])]);
  return replicationStatus(pool, { defaultLocations, queuedIds, failedIds });
}
