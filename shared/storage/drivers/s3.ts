/**
 * The S3 driver behind `S3Storage`, `RadosGWStorage` and `GoogleCloudStorage` with HMAC keys (GCS's
 * XML API speaks S3). Objects are single PUTs up to `SINGLE_PUT_BYTES` and lib-storage multipart
 * uploads beyond (or when the length is unknown); reads are ranged GETs; listings page through
 * ListObjectsV2; batch deletes use DeleteObjects, 1000 keys per request.
 *
 * Off AWS the client uses path-style addressing and computes checksums only where an operation
 * requires them: with the SDK's default, stream bodies are sent `aws-chunked` with a trailer that
 * RadosGW refuses (411) and some servers store verbatim.
 */
import {
  CopyObjectCommand, CreateBucketCommand, DeleteObjectCommand, HeadBucketCommand, type BucketLocationConstraint, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command,
  PutObjectCommand, S3Client, paginateListObjectsV2, type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { chunk, deleteEach, mapBounded } from '../concurrency.ts';
import { existsBy, NotFoundError, type StorageError } from '../errors.ts';
import { KeyPrefix } from '../keys.ts';
import type {
  ByteRange, CopyFromOptions, DeleteManyResult, ObjectStat, ObjectStore, StorageCapabilities, WriteOptions,
} from '../types.ts';
import { s3Error } from './s3-errors.ts';
import { S3Multipart } from './s3-multipart.ts';
import { MultipartStore } from './multipart-store.ts';
import type { S3Settings } from './s3-params.ts';
import { connectTimeoutMs, DEFAULT_STORAGE_TIMEOUTS, type StorageTimeouts } from '../timeouts.ts';

const MiB = 1024 * 1024;
/** Known-length objects up to this size go in one PUT (streamed, nothing buffered). */
const SINGLE_PUT_BYTES = 64 * MiB;
/** Part size and parallel parts of lib-storage uploads: at most 4 x 16 MiB buffered per upload. */
const UPLOAD_PART_BYTES = 16 * MiB;
const UPLOAD_QUEUE = 4;
/** S3's DeleteObjects limit. */
const DELETE_BATCH = 1000;
/** Parallel DeleteObjects requests, or parallel single deletes where there is no batch API. */
const DELETE_PARALLELISM = 4;
const SINGLE_DELETE_PARALLELISM = 32;


/** An S3 (or S3-compatible) bucket location. */
export class S3Store extends MultipartStore implements ObjectStore {
  readonly driverName: string;
  readonly capabilities: StorageCapabilities;
  readonly minPartBytes = 5 * MiB;
  readonly client: S3Client;
  readonly bucket: string;
  readonly keys: KeyPrefix;
  protected readonly multipart: S3Multipart;

  constructor(readonly settings: S3Settings, readonly timeouts: StorageTimeouts = DEFAULT_STORAGE_TIMEOUTS) {
    super();
    this.driverName = settings.driverName;
    this.bucket = settings.bucket;
    this.keys = new KeyPrefix(settings.storagePath);
    this.capabilities = {
      signedUrls: true,
      nativeBatchDelete: settings.nativeBatchDelete,
      maxBatchDeleteKeys: settings.nativeBatchDelete ? DELETE_BATCH : SINGLE_DELETE_PARALLELISM,
      serverSideCopy: true,
      listsIncompleteUploads: true,
    };
    const checksums = settings.aws ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
    this.client = new S3Client({
      region: settings.region,
      endpoint: settings.endpoint,
      // Off AWS path style unless asked (OpenShift's virtualHostedStyle defaults to false).
      forcePathStyle: !settings.aws && !settings.virtualHostedStyle,
      credentials: settings.credentials,
      requestChecksumCalculation: checksums,
      responseChecksumValidation: checksums,
      // Without these the SDK waits for ever on a server that accepted the request and stopped
      // answering (seen: a full RadosGW holds writes indefinitely, a partition holds everything),
      // and the front end holds its client instead of answering 503. socketTimeout is inactivity
      // (no byte either way), so transfers that keep moving are never cut; the SDK's
      // requestTimeout would be a deadline on the whole upload and is left unset.
      requestHandler: {
        connectionTimeout: connectTimeoutMs(timeouts), socketTimeout: timeouts.idleMs,
        ...(settings.caBundleFile ? { httpsAgent: trustingAgent(settings.caBundleFile) } : {}),
      },
      maxAttempts: timeouts.attempts,
    });
    this.multipart = new S3Multipart(this);
  }

  /** Maps an SDK error for this store, scrubbing its credentials from the message. */
  error(error: unknown, operation: string, key?: string): StorageError {
    const secrets = [this.settings.credentials?.secretAccessKey, this.settings.credentials?.sessionToken];
    return s3Error(error, this.driverName, operation, key, secrets);
  }

  /** Encryption headers of every object-creating request. */
  encryption(): { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string } {
    const { serverSideEncryption, kmsKeyId } = this.settings;
    return serverSideEncryption ? { ServerSideEncryption: serverSideEncryption, SSEKMSKeyId: kmsKeyId } : {};
  }

  async put(key: string, body: Readable | Buffer, options: WriteOptions = {}): Promise<ObjectStat> {
    const Key = this.keys.toBackend(key);
    const common = { Bucket: this.bucket, Key, ContentType: options.contentType, ...this.encryption() };
    const size = options.contentLength;
    try {
      if (size !== undefined && size <= SINGLE_PUT_BYTES) {
        // RadosGW and S3 refuse (BadDigest) a body whose MD5 is not Content-MD5: nothing is stored.
        const command = new PutObjectCommand({ ...common, Body: body, ContentLength: size, ContentMD5: options.contentMd5?.toString('base64') });
        // PutObject returns no date; the response's Date header is the server's clock at the write,
        // which saves a HEAD per object (S3 dates have second precision either way).
        let date: string | undefined;
        command.middlewareStack.add((next) => async (args) => {
          const result = await next(args);
          date = (result.response as { headers?: Record<string, string> }).headers?.date;
          return result;
        }, { step: 'deserialize', name: 'quayfleetResponseDate' });
        const output = await this.client.send(command, { abortSignal: options.signal });
        if (date) return { key, size, lastModified: new Date(date), etag: output.ETag };
      } else {
        const upload = new Upload({ client: this.client, params: { ...common, Body: body }, partSize: UPLOAD_PART_BYTES, queueSize: UPLOAD_QUEUE });
        options.signal?.addEventListener('abort', () => void upload.abort(), { once: true });
        await upload.done();
      }
    } catch (error) {
      throw this.error(error, 'put', key);
    }
    // A multipart upload answers no size or date (and RadosGW's not even an ETag).
    return this.stat(key);
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const whole = !range || (range.start === 0 && range.end === undefined);
    const Range = whole ? undefined : `bytes=${range.start}-${range.end ?? ''}`;
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keys.toBackend(key), Range }), { abortSignal: signal });
      const body = response.Body as IncomingMessage;
      // The answer has started: from here the caller's reading paces the socket, so give a slow
      // reader the longer stream deadline (the SDK's timeout listener stays and still fires).
      body.socket?.setTimeout(this.timeouts.streamIdleMs);
      return body;
    } catch (error) {
      const mapped = this.error(error, 'get', key);
      // S3 answers 416 to any range of an empty object; a range from 0 of it reads nothing.
      if (range?.start === 0 && mapped.name === 'InvalidRangeError') return Readable.from([]);
      throw mapped;
    }
  }

  async stat(key: string): Promise<ObjectStat> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keys.toBackend(key) }));
      return { key, size: head.ContentLength ?? 0, lastModified: head.LastModified ?? new Date(0), etag: head.ETag };
    } catch (error) {
      throw this.error(error, 'stat', key);
    }
  }

  exists(key: string): Promise<boolean> {
    return existsBy(this.stat(key));
  }

  async *list(prefix: string): AsyncIterable<ObjectStat> {
    const pages = paginateListObjectsV2(
      { client: this.client, pageSize: this.settings.listPageSize },
      { Bucket: this.bucket, Prefix: this.keys.toBackend(prefix) },
    );
    try {
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          const key = object.Key === undefined ? undefined : this.keys.fromBackend(object.Key);
          if (key !== undefined) yield { key, size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0), etag: object.ETag };
        }
      }
    } catch (error) {
      throw this.error(error, 'list', prefix);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keys.toBackend(key) }));
    } catch (error) {
      const mapped = this.error(error, 'delete', key);
      if (!(mapped instanceof NotFoundError)) throw mapped;
    }
  }

  async deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    if (!this.settings.nativeBatchDelete) return deleteEach(keys, SINGLE_DELETE_PARALLELISM, (key) => this.delete(key));
    const results = await mapBounded(chunk(keys, DELETE_BATCH), DELETE_PARALLELISM, (batch) => this.deleteBatch(batch));
    return { deleted: results.flatMap((r) => r.deleted), failed: results.flatMap((r) => r.failed) };
  }

  /** One DeleteObjects request; a failed request fails each of its keys, per-key errors fail that key. */
  private async deleteBatch(keys: readonly string[]): Promise<DeleteManyResult> {
    try {
      const response = await this.client.send(new DeleteObjectsCommand({
        Bucket: this.bucket,
        Delete: { Quiet: true, Objects: keys.map((key) => ({ Key: this.keys.toBackend(key) })) },
      }));
      const failedByName = new Map<string, Error>();
      for (const failure of response.Errors ?? []) {
        if (failure.Key !== undefined && failure.Code !== 'NoSuchKey') {
          failedByName.set(failure.Key, this.error({ name: failure.Code, message: failure.Message }, 'deleteMany', failure.Key));
        }
      }
      const failed = keys.flatMap((key) => {
        const error = failedByName.get(this.keys.toBackend(key));
        return error ? [{ key, error }] : [];
      });
      return { deleted: keys.filter((key) => !failedByName.has(this.keys.toBackend(key))), failed };
    } catch (error) {
      const mapped = this.error(error, 'deleteMany');
      return { deleted: [], failed: keys.map((key) => ({ key, error: mapped })) };
    }
  }

  async copy(from: string, to: string): Promise<void> {
    await this.copyWithStat(from, to);
  }

  /** `copy`, resolving with the copy's stat (the source's size, the copy's ETag) after a single CopyObject. */
  private async copyWithStat(from: string, to: string): Promise<ObjectStat | void> {
    // The size decides between one CopyObject and a part-by-part copy; the HEAD also reports a
    // missing source as NotFound on every server.
    const { size } = await this.stat(from).catch((error: unknown) => { throw this.error(error, 'copy', from); });
    if (size > this.settings.multipartCopyThresholdBytes) return this.multipart.copy(from, to, size);
    try {
      const copied = await this.copyObject(this, from, to);
      return { key: to, size, lastModified: copied.lastModified, etag: copied.etag };
    } catch (error) {
      throw this.error(error, 'copy', from);
    }
  }

  async copyFrom(source: ObjectStore, fromKey: string, toKey: string, options: CopyFromOptions = {}): Promise<ObjectStat | false> {
    if (!(source instanceof S3Store) || !this.sameAccount(source)) return false;
    const { expected } = options;
    if (expected && expected.size <= this.settings.multipartCopyThresholdBytes) {
      // One request: a copy under x-amz-copy-source-if-match on the recorded ETag. RadosGW ignores
      // that header (Pacific copies anyway), so the ETag the copy answers is what proves it copied
      // that object; AWS and GCS refuse another object (412), which then goes the long way.
      const copied = await this.copyObject(source, fromKey, toKey, expected.etag).catch((error: unknown) => {
        if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412) return undefined;
        throw this.error(error, 'copyFrom', fromKey);
      });
      if (copied?.etag !== undefined && unquoted(copied.etag) === unquoted(expected.etag)) {
        return { key: toKey, size: expected.size, lastModified: copied.lastModified, etag: copied.etag };
      }
      // Another object (replaced since it was recorded): its copy is overwritten below.
    }
    // The source's HEAD and the copy in parallel (one round trip of latency instead of two): a
    // copy answering the ETag the HEAD saw is a copy of that object, so it has the HEAD's size.
    const [head, copy] = await Promise.allSettled([source.stat(fromKey), this.copyObject(source, fromKey, toKey)]);
    if (head.status === 'rejected') throw head.reason as Error;
    const stat = head.value;
    if (copy.status === 'rejected') {
      // CopyObject stops at 5 GiB; above the threshold the copy goes part by part.
      if (stat.size <= this.settings.multipartCopyThresholdBytes) throw this.error(copy.reason, 'copyFrom', fromKey);
      await this.multipart.copy(fromKey, toKey, stat.size, source);
      return this.stat(toKey);
    }
    const etag = copy.value.etag;
    if (etag !== undefined && unquoted(etag) === unquoted(stat.etag)) return { ...stat, key: toKey, etag };
    // Another ETag (an object replaced in between, or KMS encryption's opaque ETags): ask the copy.
    return this.stat(toKey);
  }

  /** One CopyObject of `source`'s `fromKey` to `toKey` here (under If-Match `ifEtag`); its answered ETag and date. */
  private async copyObject(source: S3Store, fromKey: string, toKey: string, ifEtag?: string): Promise<{ etag?: string; lastModified: Date }> {
    const output = await this.client.send(new CopyObjectCommand({
      Bucket: this.bucket, Key: this.keys.toBackend(toKey), CopySource: source.copySource(fromKey), ...this.encryption(),
      ...(ifEtag === undefined ? {} : { CopySourceIfMatch: `"${unquoted(ifEtag)}"` }),
    }));
    return { etag: output.CopyObjectResult?.ETag, lastModified: output.CopyObjectResult?.LastModified ?? new Date() };
  }

  /** Same endpoint and access key: one CopyObject can read the other bucket. */
  private sameAccount(other: S3Store): boolean {
    const a = this.settings;
    const b = other.settings;
    return a.endpoint === b.endpoint && a.region === b.region && a.credentials?.accessKeyId === b.credentials?.accessKeyId;
  }

  /** `bucket/key` URL-encoded per segment, as x-amz-copy-source wants it. */
  copySource(key: string): string {
    return `${this.bucket}/${this.keys.toBackend(key).split('/').map(encodeURIComponent).join('/')}`;
  }

  async move(from: string, to: string): Promise<ObjectStat | void> {
    const copied = await this.copyWithStat(from, to);
    if (from !== to) await this.delete(from);
    return copied;
  }


  async signedReadUrl(key: string, expiresInSeconds: number): Promise<string> {
    try {
      return await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.keys.toBackend(key) }), { expiresIn: expiresInSeconds });
    } catch (error) {
      throw this.error(error, 'signedReadUrl', key);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keys.root, MaxKeys: 1 }));
    } catch (error) {
      throw this.error(error, 'ping');
    }
  }

  /**
   * Makes sure the bucket exists: created (in the client's region) when absent and the settings
   * allow it, else a clear error. A bucket another pod created meanwhile counts as existing.
   */
  async ensureBucket(): Promise<'created' | 'exists'> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return 'exists';
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status !== 404) throw this.error(error, 'ensureBucket');
    }
    if (!this.settings.createBucket) {
      throw this.error(Object.assign(new Error(`bucket ${this.bucket} does not exist (storage managementState is Unmanaged: create it, or set Managed)`), { name: 'NoSuchBucket' }), 'ensureBucket');
    }
    try {
      const region = this.settings.region;
      await this.client.send(new CreateBucketCommand({
        Bucket: this.bucket,
        // us-east-1 is the one region S3 refuses a location constraint for.
        ...(this.settings.aws && region !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } } : {}),
      }));
    } catch (error) {
      const code = (error as { name?: string }).name;
      if (code === 'BucketAlreadyOwnedByYou' || code === 'BucketAlreadyExists') return 'exists';
      throw this.error(error, 'ensureBucket');
    }
    return 'created';
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/**
 * An HTTPS agent trusting Node's roots plus the PEM bundle in `file` (OpenShift's trustedCA adds to
 * the trust store, it does not replace it). Read once at construction: a missing file fails the
 * location's configuration, not a request later.
 */
function trustingAgent(file: string): https.Agent {
  let bundle: string;
  try {
    bundle = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`the CA bundle ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!bundle.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`the CA bundle ${file} holds no PEM certificate`);
  return new https.Agent({ keepAlive: true, maxSockets: 50, ca: [...rootCertificates, bundle] });
}

/** An ETag without its quotes: RadosGW quotes it in a HEAD and not in a CopyObjectResult. */
function unquoted(etag: string | undefined): string | undefined {
  return etag?.replace(/^"(.*)"$/, '$1');
}
