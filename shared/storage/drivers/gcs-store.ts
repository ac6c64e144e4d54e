/**
 * GoogleCloudStorage over the JSON API with a service-account key (@google-cloud/storage). A read is
 * one request whose response headers are awaited before the stream is handed out, so errors reject
 * `get`; whole-object reads are hash-checked by the SDK. Multipart writes are part objects composed
 * at the end (see `gcs-multipart.ts`).
 */
import { Storage, type Bucket, type File, type FileMetadata } from '@google-cloud/storage';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { deleteEach } from '../concurrency.ts';
import { existsBy, InvalidRangeError, StorageError } from '../errors.ts';
import { KeyPrefix } from '../keys.ts';
import type {
  ByteRange, DeleteManyResult, ObjectStat, ObjectStore, StorageCapabilities, WriteOptions,
} from '../types.ts';
import { gcsError, isTransient } from './gcs-errors.ts';
import { GcsMultipart } from './gcs-multipart.ts';
import { MultipartStore } from './multipart-store.ts';
import { DEFAULT_STORAGE_TIMEOUTS, idleDeadline, sliced, type StorageTimeouts } from '../timeouts.ts';

const MiB = 1024 * 1024;
/** Known-length objects up to this size are one multipart/related request; larger ones a resumable session. */
const SIMPLE_UPLOAD_BYTES = 8 * MiB;
/** Parallel single deletes: the Node SDK has no batch endpoint. */
const DELETE_PARALLELISM = 32;

/** The fields of a service-account key the driver uses. */
export interface ServiceAccountKey {
  readonly client_email: string;
  readonly private_key: string;
  readonly project_id?: string;
}

/** What a key-file GoogleCloudStorage location is built from. */
export interface GcsSettings {
  readonly bucket: string;
  readonly storagePath?: string;
  readonly key: ServiceAccountKey;
  /** JSON API endpoint (an emulator, a private endpoint); default Google's. */
  readonly apiEndpoint?: string;
  /** Project of the bucket (default: the key's). */
  readonly projectId?: string;
  /** When set, `ensureBucket` creates a missing bucket with these settings. */
  readonly create?: { readonly location?: string; readonly kmsKeyName?: string };
  readonly listPageSize: number;
}

/** One GCS bucket location, through the JSON API. */
export class GcsStore extends MultipartStore implements ObjectStore {
  readonly driverName = 'GoogleCloudStorage';
  readonly capabilities: StorageCapabilities = {
    signedUrls: true,
    nativeBatchDelete: false,
    maxBatchDeleteKeys: DELETE_PARALLELISM,
    serverSideCopy: true,
    listsIncompleteUploads: true,
  };
  readonly minPartBytes = 1;
  readonly bucket: Bucket;
  readonly keys: KeyPrefix;
  protected readonly multipart: GcsMultipart;

  constructor(private readonly settings: GcsSettings, private readonly timeouts: StorageTimeouts = DEFAULT_STORAGE_TIMEOUTS) {
    super();
    const storage = new Storage({
      // Per request, until the answer starts (a streamed read's body is not cut by it); uploads
      // have none in the SDK and get an idle deadline in `upload`.
      timeout: timeouts.idleMs,
      retryOptions: { maxRetries: timeouts.attempts - 1 },
      projectId: settings.projectId ?? settings.key.project_id,
      credentials: { client_email: settings.key.client_email, private_key: settings.key.private_key },
      apiEndpoint: settings.apiEndpoint,
      // Bearer tokens are sent to a custom endpoint only over HTTPS (an emulator on http takes none).
      useAuthWithCustomEndpoint: settings.apiEndpoint?.startsWith('https:') ?? true,
    });
    this.bucket = storage.bucket(settings.bucket);
    this.keys = new KeyPrefix(settings.storagePath);
    this.multipart = new GcsMultipart(this);
  }

  /** Maps an SDK error for this store, scrubbing the private key from the message. */
  error(error: unknown, operation: string, key?: string): StorageError {
    return gcsError(error, operation, key, [this.settings.key.private_key]);
  }

  /** The SDK file of backend object `name`. */
  file(name: string, generation?: number): File {
    return this.bucket.file(name, generation === undefined ? undefined : { generation });
  }

  /** Streams `body` into backend object `name` and returns its metadata. */
  async upload(name: string, body: Readable | Buffer, options: WriteOptions & { metadata?: Record<string, string> } = {}): Promise<FileMetadata> {
    const file = this.file(name);
    const resumable = options.contentLength === undefined || options.contentLength > SIMPLE_UPLOAD_BYTES;
    // md5Hash: GCS refuses an upload that hashes otherwise, storing nothing.
    const md5Hash = options.contentMd5?.toString('base64');
    const target = file.createWriteStream({
      resumable, contentType: options.contentType, metadata: { metadata: options.metadata, ...(md5Hash ? { md5Hash } : {}) },
    });
    // Fails once no byte has moved for the idle deadline, the wait for the final answer included.
    const deadline = idleDeadline(this.timeouts.idleMs, options.signal);
    const progress = new Transform({ transform(chunk, _encoding, done) { deadline.touch(); done(null, chunk); } });
    try {
      await pipeline(Buffer.isBuffer(body) ? sliced(body) : body, progress, target, { signal: deadline.signal });
    } finally {
      deadline.done();
    }
    // A server that ignores md5Hash (the emulator) still reports the hash of what it stored.
    if (md5Hash && file.metadata.md5Hash !== md5Hash) {
      throw new StorageError(`stored object hashes to md5 ${String(file.metadata.md5Hash)}, not ${md5Hash}`, { driver: this.driverName, operation: 'put', key: name });
    }
    return file.metadata;
  }

  async put(key: string, body: Readable | Buffer, options: WriteOptions = {}): Promise<ObjectStat> {
    try {
      return this.toStat(key, await this.upload(this.keys.toBackend(key), body, options));
    } catch (error) {
      throw this.error(error, 'put', key);
    }
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    // The SDK does not retry streamed reads; nothing has been delivered yet, so a transient failure
    // (a keep-alive socket the server just closed, a 503) is retried here.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.openRead(key, range, signal);
      } catch (error) {
        if (attempt >= this.timeouts.attempts || !isTransient(error) || signal?.aborted) throw error;
        await sleep(100 * attempt);
      }
    }
  }

  /** One read request, rejecting on its response headers; the stream is handed out only on success. */
  private async openRead(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const whole = !range || (range.start === 0 && range.end === undefined);
    const source = this.file(this.keys.toBackend(key)).createReadStream(whole ? {} : { start: range.start, end: range.end });
    const out = this.mapStreamErrors(source, key, signal); // piping starts the request
    // Until the caller has the stream, a failure must not surface as an unhandled 'error' event.
    const hold = (): void => undefined;
    out.on('error', hold);
    // One request: wait for the response headers so a missing key or a bad range rejects here.
    const outcome = await new Promise<{ status?: number; error?: unknown }>((resolve) => {
      source.once('response', (response: { statusCode?: number }) => {
        if ((response.statusCode ?? 0) < 400) resolve({ status: response.statusCode }); // errors follow as 'error'
      });
      source.once('error', (error: unknown) => resolve({ error }));
    });
    // A range the server ignored (the emulator answers an unsatisfiable range with the whole object).
    const rangeIgnored = !whole && range.start > 0 && outcome.status === 200;
    if (outcome.error !== undefined || rangeIgnored) {
      out.destroy();
      const mapped = rangeIgnored
        ? new InvalidRangeError(`range starts at ${range?.start}, past the end of the object`, { driver: this.driverName, operation: 'get', key })
        : this.error(outcome.error, 'get', key);
      if (range?.start === 0 && mapped instanceof InvalidRangeError) return Readable.from([]); // a range of an empty object
      throw mapped;
    }
    out.off('error', hold);
    return out;
  }

  /** Re-emits `source` through a stream whose errors are storage errors; destroying it stops `source`. */
  private mapStreamErrors(source: Readable, key: string, signal?: AbortSignal): Readable {
    const out = new PassThrough();
    source.on('error', (error) => out.destroy(this.error(error, 'get', key)));
    out.on('close', () => source.destroy());
    signal?.addEventListener('abort', () => out.destroy(signal.reason as Error), { once: true });
    return source.pipe(out);
  }

  async stat(key: string): Promise<ObjectStat> {
    try {
      const [metadata] = await this.file(this.keys.toBackend(key)).getMetadata();
      return this.toStat(key, metadata);
    } catch (error) {
      throw this.error(error, 'stat', key);
    }
  }

  toStat(key: string, metadata: FileMetadata): ObjectStat {
    return { key, size: Number(metadata.size ?? 0), lastModified: new Date(metadata.updated ?? 0), etag: metadata.etag };
  }

  exists(key: string): Promise<boolean> {
    return existsBy(this.stat(key));
  }

  async *list(prefix: string): AsyncIterable<ObjectStat> {
    yield* this.listBackend(this.keys.toBackend(prefix), 'list', (name, metadata) => {
      const key = this.keys.fromBackend(name);
      return key === undefined ? undefined : this.toStat(key, metadata);
    });
  }

  /** Pages through backend objects under `prefix`, yielding what `map` makes of each (undefined skips). */
  async *listBackend<T>(prefix: string, operation: string, map: (name: string, metadata: FileMetadata) => T | undefined): AsyncGenerator<T> {
    let pageToken: string | undefined;
    try {
      do {
        const [files, next] = await this.bucket.getFiles({ prefix, maxResults: this.settings.listPageSize, pageToken, autoPaginate: false });
        for (const file of files) {
          const item = map(file.name, file.metadata);
          if (item !== undefined) yield item;
        }
        pageToken = (next as { pageToken?: string } | null | undefined)?.pageToken;
      } while (pageToken);
    } catch (error) {
      throw this.error(error, operation, prefix);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.file(this.keys.toBackend(key)).delete({ ignoreNotFound: true });
    } catch (error) {
      throw this.error(error, 'delete', key);
    }
  }

  deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    return deleteEach(keys, DELETE_PARALLELISM, (key) => this.delete(key));
  }

  async copyFrom(source: ObjectStore, fromKey: string, toKey: string): Promise<ObjectStat | false> {
    // A rewrite within one endpoint, authorised by this store's account (which must read the source).
    if (!(source instanceof GcsStore) || !this.sameAccount(source)) return false;
    const name = source.keys.toBackend(fromKey);
    try {
      const [metadata] = await source.file(name).getMetadata();
      // The generation pins the copy to the object just read, not one written in between.
      await source.file(name, Number(metadata.generation)).copy(this.file(this.keys.toBackend(toKey)));
      return source.toStat(fromKey, metadata);
    } catch (error) {
      throw this.error(error, 'copyFrom', fromKey);
    }
  }

  /** Same endpoint and service account: a rewrite can read the other bucket. */
  private sameAccount(other: GcsStore): boolean {
    return this.settings.apiEndpoint === other.settings.apiEndpoint && this.settings.key.client_email === other.settings.key.client_email;
  }

  async copy(from: string, to: string): Promise<void> {
    try {
      await this.file(this.keys.toBackend(from)).copy(this.file(this.keys.toBackend(to)));
    } catch (error) {
      throw this.error(error, 'copy', from);
    }
  }

  async move(from: string, to: string): Promise<void> {
    await this.copy(from, to);
    if (from !== to) await this.delete(from);
  }


  async signedReadUrl(key: string, expiresInSeconds: number): Promise<string> {
    try {
      const [url] = await this.file(this.keys.toBackend(key)).getSignedUrl({ version: 'v4', action: 'read', expires: Date.now() + expiresInSeconds * 1000 });
      return url;
    } catch (error) {
      throw this.error(error, 'signedReadUrl', key);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.bucket.getFiles({ prefix: this.keys.root, maxResults: 1, autoPaginate: false });
    } catch (error) {
      throw this.error(error, 'ping');
    }
  }

  /** Creates the bucket when absent and allowed (in the settings' location, with the default KMS key), else requires it. */
  async ensureBucket(): Promise<'created' | 'exists'> {
    try {
      const [exists] = await this.bucket.exists();
      if (exists) return 'exists';
      const create = this.settings.create;
      if (!create) throw new Error(`bucket ${this.bucket.name} does not exist (storage managementState is Unmanaged: create it, or set Managed)`);
      await this.bucket.create({
        ...(create.location ? { location: create.location } : {}),
        ...(create.kmsKeyName ? { encryption: { defaultKmsKeyName: create.kmsKeyName } } : {}),
      });
      return 'created';
    } catch (error) {
      // Another pod created it between the check and the create.
      if ((error as { code?: number }).code === 409) return 'exists';
      throw this.error(error, 'ensureBucket');
    }
  }

  async close(): Promise<void> {}
}
