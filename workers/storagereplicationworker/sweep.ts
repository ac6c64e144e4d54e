/**
 * The reconciler (quayfleet's; Quay has none, §2.5: once a job is abandoned only a later push or
 * an operator's backfill brings the blob back): a schedule of this worker that, each tick, checks
 * one page of `imagestorage` (by id, from where the previous tick stopped, wrapping around at the
 * end) for blobs a required location lacks and enqueues a job for each. A tick costs one page
 * whatever the registry's size; a full pass takes (blobs / SWEEP_PAGE) ticks.
 *
 * It catches what the push path's enqueue cannot: a job dead-lettered after its five attempts (a
 * source missing for half an hour, a corrupt copy: enqueueing replaces a dead letter), a location
 * or namespace region added since (`replication backfill` does that at once), a job lost with
 * Redis. A blob with a live job is a no-op (the job id is the blob's).
 */
import { imagestoragereplication } from '../../queues/imagestoragereplication.ts';
import { findMissingBlobs } from '../../shared/db/replication.ts';
import { mapBounded } from '../../shared/storage/concurrency.ts';
import type { JobContext } from '../../shared/runtime/worker.ts';
import type { FleetServices } from '../services.ts';

/** Blobs examined per tick. */
export const SWEEP_PAGE = 5000;
/** Seconds between ticks: a pass over 10 million blobs takes about 33 hours. */
export const SWEEP_EVERY_SECONDS = 60;
/** Enqueues in flight at once (two Redis round trips each). */
const ENQUEUE_CONCURRENCY = 16;

/** What one tick did. */
export interface SweepResult {
  readonly examined: number;
  readonly queued: number;
  /** The id the next tick resumes after (0: a new pass). */
  readonly nextAfterId: number;
}

/** One tick: a page of blobs from the stored cursor; every one a required location lacks is enqueued. */
export async function sweepReplication(ctx: JobContext<FleetServices>, page = SWEEP_PAGE): Promise<SweepResult> {
  const { rows: [cursor] } = await ctx.db.query<{ after_id: string }>(`SELECT after_id FROM replicationsweep WHERE id = 1`);
  const afterId = Number(cursor?.after_id ?? 0);
  const found = await findMissingBlobs(ctx.db, {
    afterId, limit: page, defaultLocations: ctx.storage.defaultLocations, locations: ctx.storage.locations,
  });
  await mapBounded(found.blobs, ENQUEUE_CONCURRENCY, (blob) => ctx.enqueue(imagestoragereplication, {
    v: 1, storageId: blob.id, namespaceId: blob.namespaceId, digest: blob.digest,
  }));
  const nextAfterId = found.nextAfterId ?? 0;
  await ctx.db.query(
    `INSERT INTO replicationsweep (id, after_id, passes, updated) VALUES (1, $1, $2, now())
     ON CONFLICT (id) DO UPDATE SET after_id = $1, passes = replicationsweep.passes + $2, updated = now()`,
    [nextAfterId, found.nextAfterId === undefined ? 1 : 0]);
  const result = { examined: found.examined, queued: found.blobs.length, nextAfterId };
  ctx.log.info({ afterId, ...result }, found.blobs.length > 0 ? 'replication sweep queued blobs missing from required locations' : 'replication sweep found nothing missing');
  return result;
}
