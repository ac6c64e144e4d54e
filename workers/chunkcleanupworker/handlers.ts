/**
 * The two handlers: `blobuploadcleanup` (the periodic sweep: abandoned sessions and the uploads
 * folder on `stale_uploads`, ownerless multipart writes on `stale_multipart_uploads`) and
 * `chunk_cleanup` (one finished or cancelled upload's segments).
 */
import type { BlobUploadCleanupPayload } from '../../queues/blob-upload-cleanup.ts';
import type { ChunkCleanupPayload } from '../../queues/chunk-cleanup.ts';
import { garbagecollection } from '../../queues/garbagecollection.ts';
import type { Config } from '../../shared/config/index.ts';
import { PermanentFailureError } from '../../shared/runtime/outcomes.ts';
import type { JobContext, WorkerServices } from '../../shared/runtime/worker.ts';
import { mapBounded } from '../../shared/storage/concurrency.ts';
import type { DistributedStorage } from '../../shared/storage/distributed.ts';
import { repositoriesWithExpiredLeases, runUploadCleanup } from './cleanup.ts';
import { bindUploadGauges, recordCleaned } from './metrics.ts';
import { cleanSegments } from './segments.ts';
import { uploadCleanupSettings } from './settings.ts';

/** What the upload-cleanup workers need from their process. */
export interface UploadCleanupServices extends WorkerServices {
  readonly storage: DistributedStorage;
  readonly config: Config;
  /**
   * The wall clock (epoch ms) a session's inactivity is measured by; `Date.now` when absent. The
   * front end stamps a session's last chunk and its claim with its own clock (`RegistryDeps.now`).
   */
  readonly now?: () => number;
}

type Ctx = JobContext<UploadCleanupServices>;

/** Most repositories with expired leases handed to GC per run (the GC sweep finds the rest). */
export const MAX_LEASE_HANDOFFS = 1000;

/** Handles one `blobuploadcleanup` job. */
export async function handleBlobUploadCleanup(payload: BlobUploadCleanupPayload, ctx: Ctx): Promise<void> {
  const settings = uploadCleanupSettings(ctx.config);
  bindUploadGauges(ctx.db, settings.sessionThresholdMs);
  if (payload.location !== undefined && !ctx.storage.locations.includes(payload.location)) {
    throw new PermanentFailureError(`unknown storage location ${payload.location}`);
  }
  const nowMs = ctx.now?.() ?? Date.now();
  const staleUploads = payload.operation === 'stale_uploads';
  const report = await runUploadCleanup(ctx.db, ctx.storage, settings, {
    nowMs, location: payload.location, signal: ctx.signal,
    sessions: staleUploads, folder: staleUploads && settings.cleanFolder, multipart: !staleUploads && settings.cleanMultipart,
    onCleaned: (kind, objects, bytes, sessions) => recordCleaned(kind, objects, bytes, sessions),
  });
  if (ctx.signal.aborted) throw new Error('interrupted by shutdown after committed batches; the next run continues');
  const handed = staleUploads && settings.handLeasesToGc ? await handLeasesToGc(ctx, nowMs) : 0;
  const { listed: _listed, ...sessions } = report.sessions;
  ctx.log.info({
    operation: payload.operation, judgedAt: new Date(nowMs).toISOString(), sessions, leasesHandedToGc: handed,
    locations: report.locations.map(({ location, multipart, uncommitted, temporary, folder }) => ({
      location, multipart: multipart && { ...multipart, items: undefined }, uncommitted: uncommitted && { ...uncommitted, items: undefined },
      temporary, folder: folder && { ...folder, items: undefined },
    })),
  }, 'upload cleanup done');
}

// The expired upload leases cleanup leaves behind go to GC now rather than at the next sweep.
async function handLeasesToGc(ctx: Ctx, nowMs: number): Promise<number> {
  const repositoryIds = await repositoriesWithExpiredLeases(ctx.db, nowMs, MAX_LEASE_HANDOFFS);
  const dueAtS = Math.floor(nowMs / 1000);
  await mapBounded(repositoryIds, 16, (repositoryId) => ctx.enqueue(garbagecollection, { v: 1, reason: 'upload_lease', repositoryId, dueAtS }));
  return repositoryIds.length;
}

/** Handles one `chunk_cleanup` job. */
export async function handleChunkCleanup(payload: ChunkCleanupPayload, ctx: Ctx): Promise<void> {
  if (!ctx.storage.locations.includes(payload.location)) throw new PermanentFailureError(`unknown storage location ${payload.location}`);
  const result = await cleanSegments(ctx.db, ctx.storage.store(payload.location), payload);
  recordCleaned('segment', result.objects + result.aborted, result.bytes);
  ctx.log.info(result, 'upload segments deleted');
}
