/**
 * One `imagestoragereplication` job: copy blob `storageId` from a location that holds it to every
 * location that must hold it and does not, verify each copy there, and record its placement.
 *
 * Locking (invariant 1, and "no placement for a blob GC just deleted"): the copy itself runs
 * without the blob's digest lock, so a push of the same digest is never held behind a long copy.
 * Every decision runs under that lock (`lockBlobDigest`, the one the push path and GC take):
 * is the `imagestorage` row still there, is the copy still at the destination (a GC drain of an
 * older generation of this digest may have deleted it while we copied), record the placement. If
 * GC collected the blob meanwhile, the copy is deleted again instead of recorded, and once the
 * placement commits GC's own re-check sees it and deletes that copy along with the others.
 */
import type { ImageStorageReplicationPayload } from '../../queues/imagestoragereplication.ts';
import { lockBlobDigest } from '../../shared/db/locks.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { addPlacementAt, loadReplicationBlob, type ReplicationBlob } from '../../shared/db/replication.ts';
import { DeferError, PermanentFailureError } from '../../shared/runtime/outcomes.ts';
import type { JobContext } from '../../shared/runtime/worker.ts';
import { blobKey, NotFoundError, type ObjectStore } from '../../shared/storage/index.ts';
import type { FleetServices } from '../services.ts';
import { copyBlob, CorruptCopyError, verifyAt, type CopyMethod } from './copy.ts';
import { bindBacklogGauge, countCopy, type CopyOutcome } from './metrics.ts';

/** Waits of the worker; production uses the defaults, tests inject shorter ones. */
export interface ReplicationTiming {
  /** Pauses between probes for a source not there yet, within one attempt (Quay: 2, 4, 8, 16 s). */
  readonly sourceProbeDelaysMs: readonly number[];
  /** First re-delay after a destination or source location failed; doubles per failure. */
  readonly locationRetryMs: number;
  /** Longest re-delay after location failures. */
  readonly locationRetryMaxMs: number;
}

export const DEFAULT_TIMING: ReplicationTiming = {
  sourceProbeDelaysMs: [2_000, 4_000, 8_000, 16_000],
  locationRetryMs: 5_000,
  locationRetryMaxMs: 10 * 60_000,
};

/** Services of the worker: the fleet's, plus optional timing. */
export interface ReplicationServices extends FleetServices {
  readonly replicationTiming?: Partial<ReplicationTiming>;
}

/** What a job remembers across deferrals: consecutive location failures, for the backoff. */
export interface ReplicationCheckpoint {
  readonly locationFailures: number;
}

type Ctx = JobContext<ReplicationServices, ReplicationCheckpoint>;

/** No location holding the blob has its bytes yet (Quay §2.5): retried with the queue's backoff. */
export class SourceMissingError extends Error {
  constructor(digest: string, locations: readonly string[]) {
    super(`cannot find blob ${digest} in any of its placements (${locations.join(', ')}): stopping replication until the next attempt`);
    this.name = 'SourceMissingError';
  }
}

/** Most rounds one job makes when new required locations appear while it runs. */
const MAX_ROUNDS = 3;
/** Blobs from this size up are checked for a copy left by an interrupted attempt before copying. */
const REUSE_MIN_BYTES = 16 * 1024 * 1024;
/** Destinations copied to at once. */
const DESTINATION_CONCURRENCY = 4;

/** The handler. */
export async function handleReplication(payload: ImageStorageReplicationPayload, ctx: Ctx): Promise<void> {
  bindBacklogGauge(ctx.db, ctx.storage.defaultLocations);
  const timing = { ...DEFAULT_TIMING, ...ctx.replicationTiming };
  for (let round = 0; round < MAX_ROUNDS; round += 1) {
    const blob = await loadReplicationBlob(ctx.db, payload.storageId, payload.namespaceId);
    if (!blob || blob.digest !== payload.digest) {
      // Quay completes silently too: the blob was collected (or its id reused by another blob).
      ctx.log.info('blob is gone (collected); nothing to replicate');
      return;
    }
    const missing = missingLocations(ctx, blob);
    if (missing.length === 0) return;
    const source = await findSource(ctx, blob, timing);
    const failures = await replicateTo(ctx, blob, source, missing);
    if (failures.length > 0) await deferAfterFailures(ctx, timing, failures);
  }
}

/** Required locations (defaults and regions this process has a store for) without a placement. */
function missingLocations(ctx: Ctx, blob: ReplicationBlob): string[] {
  const known = new Set(ctx.storage.locations);
  const unknown = blob.regions.filter((name) => !known.has(name));
  if (unknown.length > 0) ctx.log.warn({ locations: unknown }, 'namespace regions name locations missing from DISTRIBUTED_STORAGE_CONFIG; skipped');
  const held = new Set(blob.placements);
  return [...new Set([...ctx.storage.defaultLocations, ...blob.regions])].filter((name) => known.has(name) && !held.has(name));
}

/**
 * The most preferred placement whose copy exists with the right size, probing again after each of
 * `sourceProbeDelaysMs` while none has it (the push's object may not be visible yet). Throws
 * SourceMissingError when none appears, DeferError when a holding location cannot be reached.
 */
async function findSource(ctx: Ctx, blob: ReplicationBlob, timing: ReplicationTiming): Promise<{ name: string; store: ObjectStore }> {
  const key = blobKey(blob.digest);
  const order = ctx.storage.readOrder(blob.placements);
  if (order.length === 0) throw new PermanentFailureError(`blob ${blob.digest} is only in locations missing from DISTRIBUTED_STORAGE_CONFIG (${blob.placements.join(', ')})`);
  for (let probe = 0; ; probe += 1) {
    const errors: string[] = [];
    for (const name of order) {
      const store = ctx.storage.store(name);
      try {
        const stat = await store.stat(key);
        if (stat.size === blob.size) return { name, store };
        errors.push(`${name}: ${stat.size} bytes, expected ${blob.size}`);
      } catch (error) {
        if (!(error instanceof NotFoundError)) errors.push(`${name}: ${(error as Error).message}`);
      }
    }
    const delay = timing.sourceProbeDelaysMs[probe];
    if (delay === undefined || ctx.signal.aborted) {
      if (errors.length > 0) throw new DeferError(timing.locationRetryMs, `no source location could be read: ${errors.join('; ')}`);
      throw new SourceMissingError(blob.digest, order);
    }
    await sleep(delay, ctx.signal);
  }
}

/** Copies to every `destination` in parallel; returns the failures (the rest are recorded). */
async function replicateTo(ctx: Ctx, blob: ReplicationBlob, source: { name: string; store: ObjectStore }, destinations: string[]): Promise<{ location: string; error: Error }[]> {
  const failures: { location: string; error: Error }[] = [];
  const queue = [...destinations];
  const lane = async (): Promise<void> => {
    for (let location = queue.shift(); location !== undefined; location = queue.shift()) {
      try {
        await replicateOne(ctx, blob, source, location);
      } catch (error) {
        failures.push({ location, error: error as Error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(DESTINATION_CONCURRENCY, destinations.length) }, lane));
  return failures;
}

/** One destination: copy unless a verified copy is already there, verify, record under the digest lock. */
async function replicateOne(ctx: Ctx, blob: ReplicationBlob, source: { name: string; store: ObjectStore }, location: string): Promise<void> {
  const key = blobKey(blob.digest);
  const destination = ctx.storage.store(location);
  const started = performance.now();
  let method: CopyMethod | 'none' = 'none';
  let outcome: CopyOutcome = 'failed';
  try {
    // An earlier attempt may have copied a large blob and died before recording: reuse a copy that
    // verifies. Small blobs are copied again (cheaper than the extra round trip on every job).
    if (blob.size < REUSE_MIN_BYTES || !(await alreadyThere(destination, location, blob, ctx.signal))) {
      method = await copyBlob({ source: source.store, destination, destinationName: location, key, digest: blob.digest, size: blob.size, signal: ctx.signal });
      await verifyAt(destination, location, key, blob.digest, blob.size, ctx.signal);
    }
    const recorded = await recordPlacement(ctx, blob, destination, location);
    outcome = recorded === 'recorded' ? (method === 'none' ? 'already_present' : 'copied') : 'collected';
    ctx.log.info({ location, source: source.name, method, outcome, bytes: blob.size }, recorded === 'recorded' ? 'blob replicated' : 'blob collected during the copy; copy removed');
  } catch (error) {
    if (error instanceof CorruptCopyError) {
      outcome = 'corrupt';
      await discardCopy(ctx, blob, destination, location);
    }
    throw error;
  } finally {
    countCopy(location, outcome, method, blob.size, (performance.now() - started) / 1000);
  }
}

/** Whether `location` already has a copy of the blob that verifies (left by an interrupted attempt). */
async function alreadyThere(store: ObjectStore, location: string, blob: ReplicationBlob, signal: AbortSignal): Promise<boolean> {
  try {
    await verifyAt(store, location, blobKey(blob.digest), blob.digest, blob.size, signal);
    return true;
  } catch (error) {
    if (error instanceof NotFoundError || error instanceof CorruptCopyError) return false;
    throw error;
  }
}

/**
 * Under the digest lock: records the placement if the blob row is still there and so is the copy;
 * if GC collected the blob meanwhile, deletes the copy (unless a push re-created the digest, whose
 * own job will find and record it) and reports `collected`.
 */
async function recordPlacement(ctx: Ctx, blob: ReplicationBlob, store: ObjectStore, location: string): Promise<'recorded' | 'collected'> {
  const key = blobKey(blob.digest);
  return withTransaction(ctx.db, async (tx) => {
    await lockBlobDigest(tx, blob.digest);
    const { rows } = await tx.query<{ id: number }>(`SELECT id FROM imagestorage WHERE content_checksum = $1`, [blob.digest]);
    const current = rows[0];
    if (current?.id !== blob.id) {
      if (!current) await store.delete(key);
      return 'collected';
    }
    // A GC drain holds this lock while it deletes; any that ran during the copy is done by now.
    const stat = await store.stat(key).catch((error: unknown) => {
      if (error instanceof NotFoundError) throw new Error(`copy at ${location} vanished before it was recorded (deleted by GC of an earlier generation); copying again`, { cause: error });
      throw error;
    });
    if (stat.size !== blob.size) throw new CorruptCopyError(location, `${stat.size} bytes at record time, expected ${blob.size}`);
    await addPlacementAt(tx, blob.id, location);
    return 'recorded';
  });
}

/** Deletes a corrupt copy, under the digest lock, unless the location is (by now) a recorded placement. */
async function discardCopy(ctx: Ctx, blob: ReplicationBlob, store: ObjectStore, location: string): Promise<void> {
  await withTransaction(ctx.db, async (tx) => {
    await lockBlobDigest(tx, blob.digest);
    const { rows } = await tx.query(
      `SELECT 1 FROM imagestorageplacement p JOIN imagestoragelocation l ON l.id = p.location_id
        JOIN imagestorage s ON s.id = p.storage_id WHERE s.content_checksum = $1 AND l.name = $2`, [blob.digest, location]);
    if (rows.length === 0) await store.delete(blobKey(blob.digest));
  }).catch((error: unknown) => ctx.log.warn({ err: error, location }, 'could not delete a corrupt copy; the next attempt overwrites it'));
}

/**
 * Some destinations failed; the others are recorded. A corrupt copy spends an attempt (it may be
 * the source's bytes that are wrong: dead-lettered after the last); an unreachable location does
 * not (Quay's WorkerSleepException): the job is re-delayed with a doubling backoff, never lost.
 */
async function deferAfterFailures(ctx: Ctx, timing: ReplicationTiming, failures: { location: string; error: Error }[]): Promise<never> {
  const detail = failures.map((f) => `${f.location}: ${f.error.message}`).join('; ');
  const corrupt = failures.find((f) => f.error instanceof CorruptCopyError);
  if (corrupt) throw corrupt.error;
  const count = (ctx.resumeFrom?.locationFailures ?? 0) + 1;
  await ctx.checkpoint({ locationFailures: count });
  const delayMs = Math.min(timing.locationRetryMaxMs, timing.locationRetryMs * 2 ** (count - 1));
  ctx.log.warn({ locations: failures.map((f) => f.location), delayMs, failures: count }, `replication to some locations failed; retrying them later: ${detail}`);
  throw new DeferError(delayMs, `replication failed for ${failures.map((f) => f.location).join(', ')}: ${detail}`);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
