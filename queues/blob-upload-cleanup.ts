/**
 * `blobuploadcleanup`: the periodic upload hygiene of Quay's BlobUploadCleanupWorker, as two
 * operations: `stale_uploads` (abandoned `blobupload` rows and their objects, plus the uploads
 * folder when CLEAN_BLOB_UPLOAD_FOLDER) hourly, and `stale_multipart_uploads` (multipart uploads
 * older than a day) every six hours. A quayfleet extension: Quay has no queue for it.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, REMOVE_COMPLETED } from './contract.ts';
import { token } from './fields.ts';

/** The cleanup operations, named after Quay's operations. */
export const BLOB_UPLOAD_CLEANUP_OPERATIONS = ['stale_uploads', 'stale_multipart_uploads'] as const;

/** The `blobuploadcleanup` contract: one job per cleanup operation (and location). */
export const blobUploadCleanup = defineQueue({
  name: 'blobuploadcleanup',
  version: 1,
  payload: z.object({
    v: z.literal(1),
    operation: z.enum(BLOB_UPLOAD_CLEANUP_OPERATIONS),
    /** One location to clean; absent means every preferred location. */
    location: token.optional(),
  }),
  // The same operation runs again every period: completed jobs must not linger under its id.
  jobOptions: jobOptions({ removeOnComplete: REMOVE_COMPLETED }),
  dedupeId: (p) => `blobuploadcleanup/${p.operation}/${p.location ?? 'all'}`,
  logBindings: (p) => ({ operation: p.operation, location: p.location }),
});

/** A `blobuploadcleanup` payload. */
export type BlobUploadCleanupPayload = z.output<typeof blobUploadCleanup.payload>;
