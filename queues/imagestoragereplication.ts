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
const blobPayload = z.object({
  v: z.literal(1),
  /** The `imagestorage` row of the blob. */
  storageId: rowId,
  /** The namespace whose push caused the job (its regions are required even before its links are visible). */
  namespaceId: rowId,
  /** The blob's digest, for logs and to detect a reused row id. */
  digest,
});

/**
 * The reconciler's tick (a schedule of the worker, not Quay's): one page of blobs checked for
 * required locations they lack, each enqueued as a blob job (see the worker's sweep.ts).
 */
const sweepPayload = z.object({ v: z.literal(1), sweep: z.literal(true) });

export const imagestoragereplication = defineQueue({
  name: 'imagestoragereplication',
  version: 1,
  payload: z.union([blobPayload, sweepPayload]),
  // A blob may need replicating again (a location removed and backfilled): remove completed jobs.
  jobOptions: jobOptions({ removeOnComplete: REMOVE_COMPLETED }),
  dedupeId: (p) => ('sweep' in p ? 'imagestoragereplication/sweep' : `imagestoragereplication/${p.storageId}`),
  logBindings: (p) => ('sweep' in p ? { operation: 'sweep' } : { namespaceId: p.namespaceId, storageId: p.storageId, digest: p.digest }),
});

/** A blob job's payload. */
export type BlobReplicationPayload = z.output<typeof blobPayload>;

/** An `imagestoragereplication` payload. */
export type ImageStorageReplicationPayload = z.output<typeof imagestoragereplication.payload>;
