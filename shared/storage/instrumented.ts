/**
 * The thin wrapper every driver is served through (distribution's "base" driver): it validates keys,
 * ranges and sizes before anything reaches a backend, turns any stray error into a `StorageError`,
 * times every operation, and counts multipart uploads with Quay's metric names.
 */
import type { Readable } from 'node:stream';
import { client, metric } from '../metrics/index.ts';
import { InvalidKeyError, InvalidRangeError, StorageError, messageOf } from './errors.ts';
import { assertValidKey, assertValidPrefix, keyProblem } from './keys.ts';
import { MAX_CHECKED_PUT_BYTES } from './types.ts';
import type {
  ByteRange, CopyFromOptions, DeleteManyResult, IncompleteUpload, MultipartWriter, ObjectStat, ObjectStore, UncommittedBlob, WriteOptions,
} from './types.ts';

const operationSeconds = metric('quayfleet_storage_operation_duration_seconds', () => new client.Histogram({
  name: 'quayfleet_storage_operation_duration_seconds',
  help: 'duration of storage operations by driver and operation (get: until the stream opens; list: the whole listing)',
  labelNames: ['driver', 'operation'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
}));
const multipartStarted = metric('quay_multipart_uploads_started_total', () => new client.Counter({
  name: 'quay_multipart_uploads_started_total',
  help: 'number of multipart uploads to Quay storage that started',
}));
// Unlike Quay, counted only once the backend confirms completion, so started - completed - aborted
// is the number of uploads still open or lost.
const multipartCompleted = metric('quay_multipart_uploads_completed_total', () => new client.Counter({
  name: 'quay_multipart_uploads_completed_total',
  help: 'number of multipart uploads to Quay storage that completed',
}));
const multipartAborted = metric('quay_multipart_uploads_aborted_total', () => new client.Counter({
  name: 'quay_multipart_uploads_aborted_total',
  help: 'number of multipart uploads to Quay storage that were aborted',
}));

/** Longest validity of a signed URL S3 SigV4 and GCS V4 accept: 7 days. */
export const MAX_SIGNED_URL_SECONDS = 7 * 24 * 3600;
/** Highest part number S3 accepts; other drivers accept at least as many unless documented. */
export const MAX_PART_NUMBER = 10_000;

/** Wraps `inner` so every call is validated, timed and surfaces only typed storage errors. */
export function instrument(inner: ObjectStore): ObjectStore {
  return new InstrumentedStore(inner);
}

class InstrumentedStore implements ObjectStore {
  readonly driverName: string;
  readonly capabilities;
  readonly minPartBytes: number;

  readonly ensureBucket?: () => Promise<'created' | 'exists'>;

  constructor(private readonly inner: ObjectStore) {
    this.driverName = inner.driverName;
    this.capabilities = inner.capabilities;
    this.minPartBytes = inner.minPartBytes;
    const ensure = inner.ensureBucket?.bind(inner);
    if (ensure) this.ensureBucket = () => this.timed('ensureBucket', undefined, ensure);
    // `copyFrom` is optional: absent here too when the driver has none, as the contract says.
    if (!inner.copyFrom) Object.defineProperty(this, 'copyFrom', { value: undefined });
  }

  /** Times `run` under `operation` and wraps anything that is not already a StorageError. */
  private async timed<T>(operation: string, key: string | undefined, run: () => Promise<T>): Promise<T> {
    const stop = operationSeconds.startTimer({ driver: this.driverName, operation });
    try {
      return await run();
    } catch (error) {
      throw error instanceof StorageError ? error : new StorageError(messageOf(error), { driver: this.driverName, operation, key, cause: error });
    } finally {
      stop();
    }
  }

  put(key: string, body: Readable | Buffer, options: WriteOptions = {}): Promise<ObjectStat> {
    return this.timed('put', key, async () => {
      assertValidKey(key, 'put', this.driverName);
      const contentLength = Buffer.isBuffer(body) ? body.length : options.contentLength;
      checkSize(contentLength, 'put', key, this.driverName);
      if (options.contentMd5) checkMd5(options.contentMd5, body, key, this.driverName);
      return this.inner.put(key, body, { ...options, contentLength });
    });
  }

  get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    return this.timed('get', key, async () => {
      assertValidKey(key, 'get', this.driverName);
      if (range) checkRange(range, key, this.driverName);
      return this.inner.get(key, range, signal);
    });
  }

  stat(key: string): Promise<ObjectStat> {
    return this.timed('stat', key, async () => {
      assertValidKey(key, 'stat', this.driverName);
      return this.inner.stat(key);
    });
  }

  exists(key: string): Promise<boolean> {
    return this.timed('exists', key, async () => {
      assertValidKey(key, 'exists', this.driverName);
      return this.inner.exists(key);
    });
  }

  async *list(prefix: string): AsyncIterable<ObjectStat> {
    assertValidPrefix(prefix, 'list', this.driverName);
    yield* this.timedIteration('list', prefix, this.inner.list(prefix));
  }

  delete(key: string): Promise<void> {
    return this.timed('delete', key, async () => {
      assertValidKey(key, 'delete', this.driverName);
      return this.inner.delete(key);
    });
  }

  deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    return this.timed('deleteMany', undefined, async () => {
      // Invalid keys fail individually, as the contract promises; the rest still go to the backend.
      const failed: DeleteManyResult['failed'] = [];
      const valid = keys.filter((key) => {
        const problem = keyProblem(key);
        if (problem) failed.push({ key, error: new InvalidKeyError(problem, { driver: this.driverName, operation: 'deleteMany', key }) });
        return !problem;
      });
      const result = valid.length > 0 ? await this.inner.deleteMany(valid) : { deleted: [], failed: [] };
      return { deleted: result.deleted, failed: [...failed, ...result.failed] };
    });
  }

  copy(from: string, to: string): Promise<void> {
    return this.timed('copy', from, async () => {
      assertValidKey(from, 'copy', this.driverName);
      assertValidKey(to, 'copy', this.driverName);
      return this.inner.copy(from, to);
    });
  }

  copyFrom(source: ObjectStore, fromKey: string, toKey: string, options?: CopyFromOptions): Promise<ObjectStat | false> {
    return this.timed('copyFrom', fromKey, async () => {
      assertValidKey(fromKey, 'copyFrom', this.driverName);
      assertValidKey(toKey, 'copyFrom', this.driverName);
      // Drivers recognise their own kind of store: hand them the source's driver, not its wrapper.
      const inner = source instanceof InstrumentedStore ? source.inner : source;
      return this.inner.copyFrom ? this.inner.copyFrom(inner, fromKey, toKey, options) : false;
    });
  }

  sweepTemporaryFiles(olderThan: Date): Promise<{ files: number; bytes: number }> {
    return this.timed('sweepTemporaryFiles', undefined, async () => (this.inner.sweepTemporaryFiles ? this.inner.sweepTemporaryFiles(olderThan) : { files: 0, bytes: 0 }));
  }

  // Defined on every wrapper (like sweepTemporaryFiles): drivers without staged blocks list none.
  async *listUncommittedBlobs(prefix: string, olderThan: Date): AsyncIterable<UncommittedBlob> {
    assertValidPrefix(prefix, 'listUncommittedBlobs', this.driverName);
    if (this.inner.listUncommittedBlobs) yield* this.timedIteration('listUncommittedBlobs', prefix, this.inner.listUncommittedBlobs(prefix, olderThan));
  }

  discardUncommittedBlob(blob: UncommittedBlob, olderThan: Date): Promise<number | undefined> {
    return this.timed('discardUncommittedBlob', blob.key, async () => {
      assertValidKey(blob.key, 'discardUncommittedBlob', this.driverName);
      return this.inner.discardUncommittedBlob ? this.inner.discardUncommittedBlob(blob, olderThan) : undefined;
    });
  }

  move(from: string, to: string): Promise<ObjectStat | void> {
    return this.timed('move', from, async () => {
      assertValidKey(from, 'move', this.driverName);
      assertValidKey(to, 'move', this.driverName);
      return this.inner.move(from, to);
    });
  }

  createMultipart(key: string, options?: { contentType?: string }): Promise<MultipartWriter> {
    return this.timed('createMultipart', key, async () => {
      assertValidKey(key, 'createMultipart', this.driverName);
      const writer = await this.inner.createMultipart(key, options);
      multipartStarted.inc();
      return this.wrapWriter(writer);
    });
  }

  resumeMultipart(key: string, uploadId: string): Promise<MultipartWriter> {
    return this.timed('resumeMultipart', key, async () => {
      assertValidKey(key, 'resumeMultipart', this.driverName);
      return this.wrapWriter(await this.inner.resumeMultipart(key, uploadId));
    });
  }

  async *listMultipartUploads(prefix: string, olderThan?: Date): AsyncIterable<IncompleteUpload> {
    assertValidPrefix(prefix, 'listMultipartUploads', this.driverName);
    yield* this.timedIteration('listMultipartUploads', prefix, this.inner.listMultipartUploads(prefix, olderThan));
  }

  abortMultipartUpload(upload: IncompleteUpload): Promise<void> {
    return this.timed('abortMultipartUpload', upload.key, async () => {
      assertValidKey(upload.key, 'abortMultipartUpload', this.driverName);
      await this.inner.abortMultipartUpload(upload);
      multipartAborted.inc();
    });
  }

  signedReadUrl(key: string, expiresInSeconds: number): Promise<string> {
    return this.timed('signedReadUrl', key, async () => {
      assertValidKey(key, 'signedReadUrl', this.driverName);
      if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_SIGNED_URL_SECONDS) {
        throw new StorageError(`expiresInSeconds must be an integer in 1..${MAX_SIGNED_URL_SECONDS}`, { driver: this.driverName, operation: 'signedReadUrl', key });
      }
      return this.inner.signedReadUrl(key, expiresInSeconds);
    });
  }

  ping(): Promise<void> {
    return this.timed('ping', undefined, () => this.inner.ping());
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private wrapWriter(writer: MultipartWriter): MultipartWriter {
    const { driverName } = this;
    return {
      key: writer.key,
      uploadId: writer.uploadId,
      writePart: (partNumber, body, size) => this.timed('writePart', writer.key, async () => {
        if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
          throw new StorageError(`part number must be an integer in 1..${MAX_PART_NUMBER}`, { driver: driverName, operation: 'writePart', key: writer.key });
        }
        checkSize(Buffer.isBuffer(body) ? body.length : size, 'writePart', writer.key, driverName);
        if (Buffer.isBuffer(body) && body.length !== size) {
          throw new StorageError(`size ${size} does not match the ${body.length}-byte buffer`, { driver: driverName, operation: 'writePart', key: writer.key });
        }
        return writer.writePart(partNumber, body, size);
      }),
      complete: () => this.timed('completeMultipart', writer.key, async () => {
        const stat = await writer.complete();
        multipartCompleted.inc();
        return stat;
      }),
      abort: () => this.timed('abortMultipart', writer.key, async () => {
        await writer.abort();
        multipartAborted.inc();
      }),
    };
  }

  /** Re-yields `source`, timing the whole iteration and wrapping stray errors. */
  private async *timedIteration<T>(operation: string, prefix: string, source: AsyncIterable<T>): AsyncIterable<T> {
    const stop = operationSeconds.startTimer({ driver: this.driverName, operation });
    try {
      yield* source;
    } catch (error) {
      throw error instanceof StorageError ? error : new StorageError(messageOf(error), { driver: this.driverName, operation, key: prefix, cause: error });
    } finally {
      stop();
    }
  }
}

function checkSize(size: number | undefined, operation: string, key: string, driver: string): void {
  if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) {
    throw new StorageError(`size must be a non-negative integer, got ${size}`, { driver, operation, key });
  }
}

/** `contentMd5` comes with a Buffer every driver writes in one request, and is an MD5. */
function checkMd5(md5: Buffer, body: Readable | Buffer, key: string, driver: string): void {
  if (md5.length !== 16) throw new StorageError(`contentMd5 must be 16 bytes, got ${md5.length}`, { driver, operation: 'put', key });
  if (!Buffer.isBuffer(body) || body.length > MAX_CHECKED_PUT_BYTES) {
    throw new StorageError(`contentMd5 needs a Buffer body of at most ${MAX_CHECKED_PUT_BYTES} bytes`, { driver, operation: 'put', key });
  }
}

function checkRange(range: ByteRange, key: string, driver: string): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
    throw new InvalidRangeError(`malformed range ${start}-${end ?? ''}`, { driver, operation: 'get', key });
  }
}
