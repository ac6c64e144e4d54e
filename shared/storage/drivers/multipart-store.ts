/**
 * What every driver's multipart methods have in common: the driver keeps its backend's multipart
 * mechanics in a helper (`*-multipart.ts`: S3 multipart uploads, Azure staged blocks, GCS composed
 * parts, a temp directory on disk) and the `ObjectStore` methods only hand over to it. Drivers
 * extend this class so the hand-over is written once.
 */
import type { IncompleteUpload, MultipartWriter } from '../types.ts';

/** A driver's multipart mechanics, keyed by the caller's (unprefixed) object key. */
export interface MultipartBackend {
  /** Starts an upload to `key`; nothing is visible at `key` until the writer completes. */
  create(key: string, contentType?: string): Promise<MultipartWriter>;
  /** Reattaches to an upload `create` started (in this process or another). */
  resume(key: string, uploadId: string): Promise<MultipartWriter>;
  /** In-progress uploads under `prefix`, only those started before `olderThan` when given. */
  list(prefix: string, olderThan?: Date): AsyncIterable<IncompleteUpload>;
  /** Discards an upload's parts; an upload already gone is not an error. */
  abort(key: string, uploadId: string): Promise<void>;
}

export abstract class MultipartStore {
  protected abstract readonly multipart: MultipartBackend;

  createMultipart(key: string, options?: { contentType?: string }): Promise<MultipartWriter> {
    return this.multipart.create(key, options?.contentType);
  }

  resumeMultipart(key: string, uploadId: string): Promise<MultipartWriter> {
    return this.multipart.resume(key, uploadId);
  }

  listMultipartUploads(prefix: string, olderThan?: Date): AsyncIterable<IncompleteUpload> {
    return this.multipart.list(prefix, olderThan);
  }

  abortMultipartUpload(upload: IncompleteUpload): Promise<void> {
    return this.multipart.abort(upload.key, upload.uploadId);
  }
}
