/**
 * The object store contract every storage driver implements.
 *
 * Glossary:
 * - key: a driver-relative object name (`sha256/ab/abcd...`, `uploads/<uuid>`). Keys never start
 *   or end with `/`, never contain `//`, `.` or `..` segments, NUL or control characters, are
 *   well-formed Unicode of at most 1024 UTF-8 bytes, and never lie under `.quayfleet/` (the drivers'
 *   bookkeeping area, hidden from `list`). The driver prefixes its own `storage_path`; callers never
 *   see it. `keys.ts` holds the rules and Quay's layout helpers.
 * - object: bytes stored under a key. Objects are immutable once written except by overwrite.
 * - multipart write: a resumable, multi-request write (S3 multipart upload, GCS resumable upload,
 *   Azure staged blocks, a temp file on disk) that becomes visible only on `complete()`.
 *
 * Units: sizes and offsets are bytes; ages and expiries are milliseconds or Date.
 * Errors: every method rejects with one of the errors in `errors.ts` (`NotFoundError`,
 * `InvalidKeyError`, `UnsupportedError`, `StorageError`), never with a raw SDK error.
 */
import type { Readable } from 'node:stream';

/** What a driver can do, declared as data so callers choose a path without try/catch probing. */
export interface StorageCapabilities {
  /** `signedReadUrl` returns a URL a plain HTTP client can fetch. */
  readonly signedUrls: boolean;
  /** `deleteMany` uses one backend request per batch rather than one per key. */
  readonly nativeBatchDelete: boolean;
  /** Largest number of keys one native batch request takes (S3: 1000, Azure: 256, otherwise the parallel chunk). */
  readonly maxBatchDeleteKeys: number;
  /** `copy` happens inside the backend without streaming bytes through this process. */
  readonly serverSideCopy: boolean;
  /** `listMultipartUploads`/`abortMultipartUpload` see uploads that were started but never completed. */
  readonly listsIncompleteUploads: boolean;
}

/** A blob with staged blocks and no committed content (Azure). */
export interface UncommittedBlob {
  readonly key: string;
  /** When the listing says the blob appeared (its first staged block). */
  readonly at: Date;
  readonly blocks: number;
  readonly bytes: number;
}

/** Metadata of one stored object. */
export interface ObjectStat {
  readonly key: string;
  /** Size in bytes. */
  readonly size: number;
  /** Last modification time as the backend reports it. */
  readonly lastModified: Date;
  /** Backend entity tag when it has one (not a content digest). */
  readonly etag?: string;
}

/** A byte range: `start` inclusive; `end` inclusive and optional (to the end of the object). */
export interface ByteRange {
  readonly start: number;
  readonly end?: number;
}

export interface WriteOptions {
  /** Exact length in bytes when known; lets drivers avoid buffering or chunked encoding. */
  readonly contentLength?: number;
  readonly contentType?: string;
  readonly signal?: AbortSignal;
  /**
   * MD5 of the body (16 bytes); only with a Buffer body of at most `MAX_CHECKED_PUT_BYTES`. The
   * write fails, making nothing visible, unless the bytes the backend stored hash to it: the backend
   * checks it (S3 Content-MD5, Azure Put Blob's Content-MD5, GCS md5Hash) or, without a backend to
   * ask, the driver hashes what it wrote (LocalStorage). A caller that knows the bytes it sent
   * then needs no read-back to know the stored ones.
   */
  readonly contentMd5?: Buffer;
}

/** What a caller of `copyFrom` already knows about the source object. */
export interface CopyFromOptions {
  /**
   * The source object as recorded when its bytes were verified: its ETag (as this driver kind
   * reported it) and size. A driver that can (S3) then copies under a condition on that ETag in one
   * request, and a copy answering that ETag is taken to be that object: resolved with this size and
   * no HEAD. A copy answering another ETag is stat'ed as without it.
   */
  readonly expected?: { readonly etag: string; readonly size: number };
}

/** Largest body `WriteOptions.contentMd5` may accompany: every driver writes it in one request. */
export const MAX_CHECKED_PUT_BYTES = 8 * 1024 * 1024;

/** An in-progress multipart upload as the backend lists it. */
export interface IncompleteUpload {
  readonly key: string;
  /** Backend id of the upload (S3 UploadId, a temp file name, ...). */
  readonly uploadId: string;
  readonly initiated: Date;
}

/** A resumable, multi-request write. Nothing is visible under `key` until `complete()` resolves. */
export interface MultipartWriter {
  readonly key: string;
  /** Backend id of the upload; pass it to `resumeMultipart` after a process restart. */
  readonly uploadId: string;
  /**
   * Appends the next part. Parts are numbered from 1 by the caller, in order; every part but the
   * last must be at least `minPartBytes` bytes (5 MiB on S3). `size` is the part's exact length.
   * Writing a part number again replaces that part, so retrying a failed part is safe.
   */
  writePart(partNumber: number, body: Readable | Buffer, size: number): Promise<void>;
  /**
   * Makes the object visible under `key`; resolves once the backend confirms. The parts written
   * must be exactly 1..n with n >= 1 (`StorageError` otherwise); a completed or aborted upload
   * rejects with `NotFoundError`.
   */
  complete(): Promise<ObjectStat>;
  /** Discards every part; a second abort or an abort of an unknown upload is a no-op. */
  abort(): Promise<void>;
}

/** Result of a batch delete: keys that are gone (missing keys count as deleted) and those that failed. */
export interface DeleteManyResult {
  readonly deleted: string[];
  readonly failed: { key: string; error: Error }[];
}

/** The driver interface. One instance serves one storage location. */
export interface ObjectStore {
  /** Quay's driver name (`LocalStorage`, `S3Storage`, `RadosGWStorage`, `GoogleCloudStorage`, `AzureStorage`, `SwiftStorage`). */
  readonly driverName: string;
  readonly capabilities: StorageCapabilities;
  /** Smallest part a multipart writer accepts for every part but the last, in bytes. */
  readonly minPartBytes: number;

  /** Streams `body` to `key`, replacing any object there. Resolves with the stored object's stat. */
  put(key: string, body: Readable | Buffer, options?: WriteOptions): Promise<ObjectStat>;
  /**
   * Opens a read stream of `key`, optionally only `range`. Missing key: `NotFoundError`.
   * A range starting at or past the end: `InvalidRangeError` (except start 0 of an empty object,
   * which reads nothing); an end past the end is clamped.
   */
  get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable>;
  /** Size, mtime, etag of `key`. Missing key: `NotFoundError`. */
  stat(key: string): Promise<ObjectStat>;
  /** Whether `key` exists. Never throws `NotFoundError`. */
  exists(key: string): Promise<boolean>;
  /**
   * Every object whose key starts with `prefix` (a plain string prefix, not a directory), in
   * lexicographic key order, paginated underneath. An empty prefix lists the whole location.
   */
  list(prefix: string): AsyncIterable<ObjectStat>;
  /** Deletes `key`. A missing key is not an error (idempotent). */
  delete(key: string): Promise<void>;
  /**
   * Deletes many keys with the backend's native batch where it has one, in bounded parallelism
   * otherwise. Never throws for individual keys: failures are reported in the result.
   */
  deleteMany(keys: readonly string[]): Promise<DeleteManyResult>;
  /** Copies `from` to `to` inside the backend where it can. Missing source: `NotFoundError`. */
  copy(from: string, to: string): Promise<void>;
  /**
   * Copies `fromKey` of another location's store `source` to `toKey` here inside the backend,
   * without the bytes passing through this process, when both stores are the same provider and
   * account (two buckets of one S3 endpoint and key, two containers of one Azure account, two
   * directories of one machine). Resolves false, having done nothing, when they are not (the
   * caller then streams). Otherwise resolves with the copy's stat, its size known without another
   * round trip where the backend allows (S3: the source's HEAD, sent beside the copy, when the copy
   * answers the same ETag; Azure: the source stat'ed and copied under If-Match; GCS: the source
   * generation copied), so a caller checks the size without asking. Missing source:
   * `NotFoundError`. Absent on drivers that never can.
   */
  copyFrom?(source: ObjectStore, fromKey: string, toKey: string, options?: CopyFromOptions): Promise<ObjectStat | false>;
  /**
   * Moves `from` to `to` (copy then delete the source). Missing source: `NotFoundError`. Resolves
   * with the moved object's stat where the backend answered it without another request (S3: the
   * CopyObject's ETag; replication records it with the placement), else with nothing.
   */
  move(from: string, to: string): Promise<ObjectStat | void>;

  /** Starts a multipart write to `key`. */
  createMultipart(key: string, options?: { contentType?: string }): Promise<MultipartWriter>;
  /** Re-attaches to a multipart write started earlier (possibly by another process). */
  resumeMultipart(key: string, uploadId: string): Promise<MultipartWriter>;
  /** In-progress multipart uploads under `prefix` started before `olderThan` (default: all). */
  listMultipartUploads(prefix: string, olderThan?: Date): AsyncIterable<IncompleteUpload>;
  /** Aborts one in-progress multipart upload; an unknown upload is a no-op. */
  abortMultipartUpload(upload: IncompleteUpload): Promise<void>;

  /**
   * A URL a plain HTTP GET can fetch the object from until `expiresInSeconds` pass.
   * Drivers without `capabilities.signedUrls` reject with `UnsupportedError`.
   */
  signedReadUrl(key: string, expiresInSeconds: number): Promise<string>;
  /**
   * Removes the files of writes a crash interrupted that the driver keeps in its own bookkeeping
   * area (LocalStorage's temporary files under `.quayfleet/tmp`), those last modified before
   * `olderThan` (a live write keeps its file's mtime current). Resolves with how many went and their
   * bytes; `{ files: 0, bytes: 0 }` on drivers that leave no such files (their backends discard an
   * interrupted request). Upload cleanup calls it with the stale-multipart threshold.
   */
  sweepTemporaryFiles?(olderThan: Date): Promise<{ files: number; bytes: number }>;
  /**
   * Azure: blobs under `prefix` holding only staged (uncommitted) blocks of writes that ended or
   * stalled (`azure-uncommitted.ts` says how each is judged). Absent on other drivers.
   */
  listUncommittedBlobs?(prefix: string, olderThan: Date): AsyncIterable<UncommittedBlob>;
  /**
   * Discards the staged blocks of `blob` after re-checking the judgment; resolves with the bytes
   * discarded, or undefined when the blob was kept (it became committed or a live write staged).
   */
  discardUncommittedBlob?(blob: UncommittedBlob, olderThan: Date): Promise<number | undefined>;
  /** Cheap round trip proving the backend answers (used by `/health/endtoend`). */
  ping(): Promise<void>;
  /**
   * Cloud drivers: makes sure the bucket (container) exists, creating it when the location allows
   * (OpenShift's storage `managementState: Managed`); a missing one it may not create is an error.
   */
  ensureBucket?(): Promise<'created' | 'exists'>;
  /** Releases sockets and timers; the store is unusable afterwards. */
  close(): Promise<void>;
}
