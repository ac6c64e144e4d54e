/**
 * `chunk_cleanup`: delete the leftover segments of one chunked upload (Quay's ChunkCleanupWorker,
 * Swift only there). Quay enqueues one item per segment with `{location, uuid, path}`; quayfleet
 * enqueues one job per upload listing its segment keys, in a bounded batch.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, KEEP_COMPLETED } from './contract.ts';
import { token, uuid } from './fields.ts';

/** How long after an upload ends its segments are deleted (Quay's 30 s), a job option producers pass as `runAt`. */
export const CHUNK_CLEANUP_DELAY_MS = 30_000;

/** The `chunk_cleanup` contract: one job per upload whose leftover segments must go. */
export const chunkCleanup = defineQueue({
  name: 'chunk_cleanup',
  version: 1,
  payload: z.object({
    v: z.literal(1),
    /** The storage location (a DISTRIBUTED_STORAGE_CONFIG key) holding the segments. */
    location: token,
    /** The upload session the segments belong to. */
    uploadUuid: uuid,
    /** Object keys to delete; already-missing keys count as deleted. */
    paths: z.array(z.string().min(1).max(1024)).min(1).max(1000),
  }),
  // Upload uuids are never reused: keep completed jobs for history.
  jobOptions: jobOptions({ removeOnComplete: KEEP_COMPLETED }),
  dedupeId: (p) => `chunk_cleanup/${p.location}/${p.uploadUuid}`,
  logBindings: (p) => ({ location: p.location, uploadUuid: p.uploadUuid }),
});

/** A `chunk_cleanup` payload. */
export type ChunkCleanupPayload = z.output<typeof chunkCleanup.payload>;
