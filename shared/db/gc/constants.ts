/** Fixed values of GC and purge: Quay's special digests and the batch bounds. */

/**
 * The empty gzipped tar layer old Docker clients reference from many images (Quay's
 * SPECIAL_BLOB_DIGESTS). Its row and object are never collected: clients assume it exists.
 */
export const EMPTY_LAYER_DIGEST = 'sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4';

/** Largest number of ids one GC or purge statement touches (Quay's purge chunk size). */
export const MAX_BATCH = 500;

/** Pending storage deletions claimed per transaction; one backend batch request each at most. */
export const PENDING_BATCH = 1000;

/** Transactions deleting storage objects at once, per drain. */
export const STORAGE_CONCURRENCY = 4;
