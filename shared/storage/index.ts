/**
 * The storage layer's public surface: the driver contract, typed errors, key layout, the driver
 * factory (Quay's driver names) and distributed storage. Workers and the front end import from
 * here, never from a driver file.
 */
export type {
  ByteRange, CopyFromOptions, DeleteManyResult, IncompleteUpload, MultipartWriter, ObjectStat, ObjectStore, StorageCapabilities, WriteOptions,
} from './types.ts';
export { MAX_CHECKED_PUT_BYTES } from './types.ts';
export {
  InvalidKeyError, InvalidRangeError, NotFoundError, StorageError, UnsupportedError, type StorageErrorContext,
} from './errors.ts';
export {
  KeyPrefix, MAX_KEY_BYTES, RESERVED_PREFIX, assertValidKey, assertValidPrefix, blobKey, keyProblem, normalizeStoragePath,
  prefixProblem, uploadKey,
} from './keys.ts';
export { DRIVER_NAMES, StorageConfigError, createObjectStore, loadStorageDrivers } from './drivers/index.ts';
export { MAX_PART_NUMBER, MAX_SIGNED_URL_SECONDS, instrument } from './instrumented.ts';
export {
  DistributedStorage, createDistributedStorage, type DistributedStorageConfig, type DistributedStorageOptions, type OpenedBlob,
} from './distributed.ts';
export {
  DEFAULT_STORAGE_TIMEOUTS, storageTimeouts, type StorageTimeouts,
} from './timeouts.ts';
