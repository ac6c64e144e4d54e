/**
 * `imagestoragereplication`: copy one blob to every location it should be in (Quay's
 * StorageReplicationWorker). Quay's body is `{namespace_user_id, storage_id}` with the storage
 * uuid; quayfleet carries the numeric `imagestorage` id, and the digest for logs.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, REMOVE_COMPLETED } from './contract.ts';
import { digest, rowId } from './fields.ts';

/**
 * The `imagestoragereplication` contract: one job per blob. The worker copies the blob to every
 * location it must be in (DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS plus the regions of every namespace
 * that references it), so pushes of one blob from several namespaces share one job.
 */
export const imagestoragereplication = defineQueue({
  name: 'imagestoragereplication',
  version: 1,
  payload: z.object({
    v: z.literal(1),
    /** The `imagestorage` row of the blob. */
    storageId: rowId,
    /** The namespace whose push caused the job (its regions are required even before its links are visible). */
    namespaceId: rowId,
    /** The blob's digest, for logs and to detect a reused row id. */
    digest,
  }),
  // A blob may need replicating again (a location removed and backfilled): remove completed jobs.
  jobOptions: jobOptions({ removeOnComplete: REMOVE_COMPLETED }),
  dedupeId: (p) => `imagestoragereplication/${p.storageId}`,
  logBindings: (p) => ({ namespaceId: p.namespaceId, storageId: p.storageId, digest: p.digest }),
});

/** An `imagestoragereplication` payload. */
export type ImageStorageReplicationPayload = z.output<typeof imagestoragereplication.payload>;
