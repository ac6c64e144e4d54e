/**
 * One `imagestoragereplication` job: copy blob `storageId` from a location that holds it to every
 * location that must hold it and does not, prove each copy there (copy.ts), and record the
 * placements.
 *
 * Locking (invariant 1, and "no placement for a blob GC just deleted"): the copy runs without the
 * blob's digest lock, so a push of the same digest is never held behind a long copy. The record
 * step takes it (`recordPlacements`, the lock the push path and GC take) and inserts only while
 * the blob's row, the one loaded before the copy, still exists. That is also why the copy needs
 * no second look under the lock: GC's drain deletes a digest's objects only under that lock and
 * only while no row of the digest exists, and this row existed from before the copy until the
 * insert, so no drain can have deleted the copy in between. If GC collected the blob meanwhile,
 * the copies are deleted again under the lock instead of recorded; once a placement commits, GC's
 * own re-check sees it and deletes that copy along with the others.
 *
 * Round trips per blob in the common case: two requests to storage per destination (copy.ts),
 * one for a server-side copy from a placement with a recorded ETag, and two calls to Postgres (the load; the record, which
 * also reads the blob's state after it), each batched with the same call of the other jobs of the
 * process, so a busy worker makes about two Postgres round trips per batch of blobs.
 */
import type { BlobReplicationPayload, ImageStorageReplicationPayload } from '../../queues/imagestoragereplication.ts';
import { lockBlobDigest } from '../../shared/db/locks.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import type { Pool } from '../../shared/db/pool.ts';
import { loadReplicationBlobs, recordPlacements, type PlacementRecord, type ReplicationBlob } from '../../shared/db/replication.ts';
import { DeferError, PermanentFailureError } from '../../shared/runtime/outcomes.ts';
import type { JobContext } from '../../shared/runtime/worker.ts';
import { blobKey, NotFoundError, type ObjectStore } from '../../shared/storage/index.ts';
import type { FleetServices } from '../services.ts';
import { Batcher } from './batch.ts';
import { copyBlob, CorruptCopyError, SourceCorruptError, SourceGoneError, verifyAt, type BlobSource, type CopyMethod } from './copy.ts';
import { bindBacklogGauge, countCopy } from './metrics.ts';
import { sweepReplication } from './sweep.ts';

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

/** The job ran past STORAGE_REPLICATION_PROCESSING_SECONDS (Quay's reservation): its copies were abandoned. */
export class ProcessingTimeExceededError extends Error {
  constructor(seconds: number) {
    super(`replication ran past STORAGE_REPLICATION_PROCESSING_SECONDS (${seconds} s); copies in flight abandoned, the next attempt resumes`);
    this.name = 'ProcessingTimeExceededError';
  }
}

/** Most rounds one job makes when new required locations appear while it runs. */
const MAX_ROUNDS = 3;
/** Blobs from this size up are checked for a copy left by an interrupted attempt before copying. */
const REUSE_MIN_BYTES = 16 * 1024 * 1024;
/** Destinations copied to at once. */
const DESTINATION_CONCURRENCY = 4;

/** The database calls every job makes, batched across the jobs running in this process (batch.ts). */
interface JobQueries {
  readonly load: Batcher<{ storageId: number; namespaceId: number }, ReplicationBlob | undefined>;
  readonly record: Batcher<PlacementRecord, ReplicationBlob | undefined>;
}
const queriesByPool = new WeakMap<Pool, JobQueries>();
function queriesOf(db: Pool): JobQueries {
  let queries = queriesByPool.get(db);
  if (!queries) {
    queries = { load: new Batcher((items) => loadReplicationBlobs(db, items)), record: new Batcher((records) => retryDeadlock(() => recordPlacements(db, records))) };
    queriesByPool.set(db, queries);
  }
  return queries;
}

/** Times a batch aborted as a deadlock victim is sent again before its jobs fail. */
const DEADLOCK_RETRIES = 3;

/**
 * Runs `call` (one statement batch, its own transaction) again when Postgres aborted it to break a
 * deadlock (40P01): nothing of it committed, and one abort must not fail, and spend an attempt of,
 * every job of the batch. `recordPlacements` takes its digest locks in digest order, so it cannot
 * deadlock with another batch; a transaction taking several digest locks in another order can.
 */
export async function retryDeadlock<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await call();
    } catch (error) {
      if ((error as { code?: string }).code !== '40P01' || attempt >= DEADLOCK_RETRIES) throw error;
    }
  }
}

/** How one destination of one round went. */
type DestinationResult =
  | { readonly location: string; readonly method: CopyMethod | 'none'; readonly etag?: string; readonly seconds: number; readonly error?: undefined }
  | { readonly location: string; readonly error: Error };

/**
 * The handler. The whole job runs under Quay's reservation time, STORAGE_REPLICATION_PROCESSING_SECONDS:
 * BullMQ renews the job's lease while it runs, so without a bound a copy hung on a connection that
 * never answers would hold the job for ever. Past it, the copies in flight are aborted and the
 * attempt fails (Quay's expired reservation also costs a retry); what was recorded stays recorded.
 */
export async function handleReplication(payload: ImageStorageReplicationPayload, ctx: Ctx): Promise<void> {
  bindBacklogGauge(ctx.db, ctx.storage.defaultLocations);
  if ('sweep' in payload) {
    await sweepReplication(ctx);
    return;
  }
  const timing = { ...DEFAULT_TIMING, ...ctx.replicationTiming };
  const limitS = ctx.config.quay.STORAGE_REPLICATION_PROCESSING_SECONDS;
  const deadline = AbortSignal.timeout(limitS * 1000);
  const signal = AbortSignal.any([ctx.signal, deadline]);
  try {
    await replicate(payload, ctx, timing, signal);
  } catch (error) {
    if (deadline.aborted && !ctx.signal.aborted) throw new ProcessingTimeExceededError(limitS);
    throw error;
  }
}

async function replicate(payload: BlobReplicationPayload, ctx: Ctx, timing: ReplicationTiming, signal: AbortSignal): Promise<void> {
  let blob = await queriesOf(ctx.db).load.call({ storageId: payload.storageId, namespaceId: payload.namespaceId });
  for (let round = 0; round < MAX_ROUNDS; round += 1) {
    if (!blob || blob.digest !== payload.digest) {
      // Quay completes silently too: the blob was collected (or its id reused by another blob).
      ctx.log.info('blob is gone (collected); nothing to replicate');
      return;
    }
    const missing = missingLocations(ctx, blob);
    if (missing.length === 0) return;
    const { results, source } = await copyRound(ctx, blob, missing, timing, signal);
    const copied = results.filter((r): r is Extract<DestinationResult, { error?: undefined }> => !r.error);
    const failures = results.filter((r): r is Extract<DestinationResult, { error: Error }> => r.error !== undefined);
    // Re-reading after the record (a push from another namespace may have added a region while
    // the job ran; its enqueue was a no-op on this job's id) is part of recording.
    const next = copied.length > 0 ? await record(ctx, blob, payload.namespaceId, source, copied) : blob;
    for (const failure of failures) {
      const corrupt = failure.error instanceof CorruptCopyError;
      if (corrupt) await discardCopy(ctx, blob, failure.location);
      countCopy(failure.location, corrupt ? 'corrupt' : 'failed', 'none');
    }
    if (failures.length > 0) await deferAfterFailures(ctx, timing, failures);
    if (next === undefined) return;
    blob = next;
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
 * Copies to every missing location from the most preferred placement, without first asking it
 * whether it has the blob (the copy answers that). Destinations whose copy found the source
 * without the blob, or with bytes that are not the blob, are copied again, in the same attempt,
 * from the next placement `findSource` finds holding it (a corrupt one is not asked again).
 */
async function copyRound(
  ctx: Ctx, blob: ReplicationBlob, missing: string[], timing: ReplicationTiming, signal: AbortSignal,
): Promise<{ results: DestinationResult[]; source: string }> {
  const order = ctx.storage.readOrder(blob.placements);
  if (order.length === 0) throw new PermanentFailureError(`blob ${blob.digest} is only in locations missing from DISTRIBUTED_STORAGE_CONFIG (${blob.placements.join(', ')})`);
  const corrupt = new Set<string>();
  let source = blobSource(ctx, blob, order[0]!, signal);
  let results = await copyAll(ctx, blob, source, missing, signal);
  for (;;) {
    const again = results.filter((r) => r.error instanceof SourceGoneError || r.error instanceof SourceCorruptError);
    if (again.length === 0) return { results, source: source.name };
    for (const r of again) {
      if (!(r.error instanceof SourceCorruptError)) continue;
      corrupt.add(r.error.source);
      ctx.log.warn({ source: r.error.source, location: r.location }, `the blob's copy at placement ${r.error.source} is not the blob (${r.error.message}); copying from another placement`);
    }
    const candidates = order.filter((name) => !corrupt.has(name));
    const found = candidates.length === 0 ? undefined : await findSource(ctx, blob, candidates, timing, signal);
    if (found === undefined) {
      // Every placement with an object under the blob's key holds other bytes: these destinations
      // fail as corrupt (their copy is discarded and the attempt spent, so the job dead-letters).
      const none = (location: string): DestinationResult => ({ location, error: new SourceCorruptError(order.join(', '), location, 'no placement holds the blob\'s bytes') });
      return { results: [...results.filter((r) => !again.includes(r)), ...again.map((r) => (r.error instanceof SourceCorruptError ? r : none(r.location)))], source: source.name };
    }
    source = blobSource(ctx, blob, found, signal);
    const retried = await copyAll(ctx, blob, source, again.map((r) => r.location), signal);
    const stillGone = retried.find((r) => r.error instanceof SourceGoneError);
    if (stillGone) throw new DeferError(timing.locationRetryMs, stillGone.error!.message);
    results = [...results.filter((r) => !again.includes(r)), ...retried];
  }
}

function blobSource(ctx: Ctx, blob: ReplicationBlob, name: string, signal: AbortSignal): BlobSource {
  return { name, store: ctx.storage.store(name), key: blobKey(blob.digest), digest: blob.digest, size: blob.size, etag: blob.etags[name], signal };
}

/**
 * The most preferred of `order` whose copy exists with the right size, probing again after each
 * of `sourceProbeDelaysMs` while none has it (the push's object may not be visible yet). Throws
 * SourceMissingError when none appears, DeferError when a holding location cannot be reached;
 * undefined when the only copies there are have the wrong size (they are not the blob).
 */
async function findSource(ctx: Ctx, blob: ReplicationBlob, order: readonly string[], timing: ReplicationTiming, signal: AbortSignal): Promise<string | undefined> {
  const key = blobKey(blob.digest);
  for (let probe = 0; ; probe += 1) {
    const errors: string[] = [];
    let wrongSize = 0;
    for (const name of order) {
      try {
        const stat = await ctx.storage.store(name).stat(key);
        if (stat.size === blob.size) return name;
        wrongSize += 1;
        ctx.log.warn({ source: name }, `the blob's copy at placement ${name} has ${stat.size} bytes, expected ${blob.size}`);
      } catch (error) {
        if (!(error instanceof NotFoundError)) errors.push(`${name}: ${(error as Error).message}`);
      }
    }
    if (errors.length === 0 && wrongSize === order.length) return undefined;
    const delay = timing.sourceProbeDelaysMs[probe];
    if (delay === undefined || signal.aborted) {
      if (errors.length > 0) throw new DeferError(timing.locationRetryMs, `no source location could be read: ${errors.join('; ')}`);
      if (wrongSize > 0) return undefined;
      throw new SourceMissingError(blob.digest, order);
    }
    await sleep(delay, signal);
  }
}

/** Copies to every `destination`, DESTINATION_CONCURRENCY at once; never throws (errors are results). */
async function copyAll(ctx: Ctx, blob: ReplicationBlob, source: BlobSource, destinations: readonly string[], signal: AbortSignal): Promise<DestinationResult[]> {
  const results: DestinationResult[] = [];
  const queue = [...destinations];
  const lane = async (): Promise<void> => {
    for (let location = queue.shift(); location !== undefined; location = queue.shift()) {
      const started = performance.now();
      try {
        const destination = ctx.storage.store(location);
        // An earlier attempt may have copied a large blob and died before recording: reuse a copy
        // that verifies. Small blobs are copied again (cheaper than the extra round trip every time).
        const copy = blob.size >= REUSE_MIN_BYTES && await alreadyThere(destination, location, blob, signal)
          ? { method: 'none' as const, etag: undefined }
          : await copyBlob(source, destination, location);
        results.push({ location, ...copy, seconds: (performance.now() - started) / 1000 });
      } catch (error) {
        results.push({ location, error: error as Error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(DESTINATION_CONCURRENCY, destinations.length) }, lane));
  return results;
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
 * Records the copied destinations in one statement batch under the digest lock and returns the
 * blob as it is now; undefined when GC collected it during the copy, whose copies are then removed.
 */
async function record(
  ctx: Ctx, blob: ReplicationBlob, namespaceId: number, source: string, copied: readonly Extract<DestinationResult, { error?: undefined }>[],
): Promise<ReplicationBlob | undefined> {
  const locations = copied.map((c) => c.location);
  const placements = copied.map((c) => ({ location: c.location, etag: c.etag }));
  const after = await queriesOf(ctx.db).record.call({ blob, placements, namespaceId });
  if (!after) await removeCollectedCopies(ctx, blob, locations);
  const unknown = locations.filter((name) => after && !after.placements.includes(name));
  if (unknown.length > 0) throw new Error(`storage locations ${unknown.join(', ')} have no imagestoragelocation row`);
  for (const { location, method, seconds } of copied) {
    const outcome = !after ? 'collected' : method === 'none' ? 'already_present' : 'copied';
    countCopy(location, outcome, method, blob.size, seconds);
    ctx.log.info({ location, source, method, outcome, bytes: blob.size }, after ? 'blob replicated' : 'blob collected during the copy; copy removed');
  }
  return after;
}

/**
 * GC collected the blob while it was copied: under the digest lock, deletes the copies, unless a
 * push re-created the digest meanwhile (its own job then finds and records them).
 */
async function removeCollectedCopies(ctx: Ctx, blob: ReplicationBlob, locations: readonly string[]): Promise<void> {
  await withTransaction(ctx.db, async (tx) => {
    await lockBlobDigest(tx, blob.digest);
    const { rows } = await tx.query(`SELECT 1 FROM imagestorage WHERE content_checksum = $1`, [blob.digest]);
    if (rows.length > 0) return;
    await Promise.all(locations.map((location) => ctx.storage.store(location).delete(blobKey(blob.digest))));
  });
}

/** Deletes a corrupt copy, under the digest lock, unless the location is (by now) a recorded placement. */
async function discardCopy(ctx: Ctx, blob: ReplicationBlob, location: string): Promise<void> {
  await withTransaction(ctx.db, async (tx) => {
    await lockBlobDigest(tx, blob.digest);
    const { rows } = await tx.query(
      `SELECT 1 FROM imagestorageplacement p JOIN imagestoragelocation l ON l.id = p.location_id
        JOIN imagestorage s ON s.id = p.storage_id WHERE s.content_checksum = $1 AND l.name = $2`, [blob.digest, location]);
    if (rows.length === 0) await ctx.storage.store(location).delete(blobKey(blob.digest));
  }).catch((error: unknown) => ctx.log.warn({ err: error, location }, 'could not delete a corrupt copy; the next attempt overwrites it'));
}

/**
 * Some destinations failed; the others are recorded. A corrupt copy spends an attempt (it may be
 * the source's bytes that are wrong: dead-lettered after the last); an unreachable location does
 * not (Quay's WorkerSleepException): the job is re-delayed with a doubling backoff, never lost.
 */
async function deferAfterFailures(ctx: Ctx, timing: ReplicationTiming, failures: readonly { location: string; error: Error }[]): Promise<never> {
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
