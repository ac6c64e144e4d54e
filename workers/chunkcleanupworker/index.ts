/**
 * The upload-cleanup workers (Quay's ChunkCleanupWorker and BlobUploadCleanupWorker), run together
 * by the `chunkcleanupworker` pod: `chunk_cleanup` (one finished or cancelled upload's segments)
 * and `blobuploadcleanup` (the periodic sweep of abandoned uploads). See README.md.
 */
import { blobUploadCleanup, type BlobUploadCleanupPayload } from '../../queues/blob-upload-cleanup.ts';
import { chunkCleanup, type ChunkCleanupPayload } from '../../queues/chunk-cleanup.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { handleBlobUploadCleanup, handleChunkCleanup, type UploadCleanupServices } from './handlers.ts';
import { uploadCleanupSettings } from './settings.ts';

/** Segments of finished and cancelled uploads (always on: Quay's worker runs with any storage). */
export const chunkcleanupworker = defineWorker<ChunkCleanupPayload, UploadCleanupServices>({
  name: 'chunkcleanupworker',
  queue: chunkCleanup,
  concurrency: 4,
  handler: handleChunkCleanup,
});

/** The periodic sweep (always on; CLEAN_BLOB_UPLOAD_FOLDER and FEATURE_ENABLE_STALE_MPU_CLEANUP choose its steps). */
export const blobuploadcleanupworker = defineWorker<BlobUploadCleanupPayload, UploadCleanupServices>({
  name: 'blobuploadcleanupworker',
  queue: blobUploadCleanup,
  // One operation per dedupe id at a time; the two operations may run side by side.
  concurrency: 2,
  // A sweep of a large bucket outlasts the default lease; it is renewed while the job runs.
  lockDurationMs: 120_000,
  schedule: (config) => {
    const { everySeconds } = uploadCleanupSettings(config);
    return [
      { id: 'blobuploadcleanup-stale-uploads', everySeconds, payload: { v: 1, operation: 'stale_uploads' } },
      { id: 'blobuploadcleanup-stale-multipart-uploads', everySeconds, payload: { v: 1, operation: 'stale_multipart_uploads' } },
    ];
  },
  handler: handleBlobUploadCleanup,
});

/** The workers the `chunkcleanupworker` pod runs. */
export const uploadCleanupWorkers = [chunkcleanupworker, blobuploadcleanupworker] as const;

export default chunkcleanupworker;
