/**
 * AzureStorage: block blobs in one container. Known-length objects up to 256 MiB are one Put Blob
 * (atomic, streamed); larger or unknown-length ones are staged blocks committed at the end.
 * Multipart writes stage blocks on the target blob itself (see `azure-multipart.ts`); batch deletes
 * use the Blob Batch API, 256 per request. A failed batch is not retried: its keys are deleted one
 * by one (those requests retry), and batches pause for a minute, or for good when the server
 * refuses them. Signed URLs are service SAS URLs, which need the account key.
 */
import {
  AnonymousCredential, BlobBatchClient, BlobSASPermissions, BlobServiceClient, StorageSharedKeyCredential, newPipeline, type ContainerClient,
} from '@azure/storage-blob';
import { Readable } from 'node:stream';
import { chunk, deleteEach, mapBounded } from '../concurrency.ts';
import { existsBy, InvalidRangeError, StorageError, UnsupportedError } from '../errors.ts';
import { KeyPrefix } from '../keys.ts';
import type {
  ByteRange, DeleteManyResult, ObjectStat, ObjectStore, UncommittedBlob, StorageCapabilities, WriteOptions,
} from '../types.ts';
import { azureError } from './azure-errors.ts';
import type { AzureParams } from './azure-params.ts';
import { AzureMultipart } from './azure-multipart.ts';
import { AzureUncommitted } from './azure-uncommitted.ts';
import { MultipartStore } from './multipart-store.ts';
import { addIdleDeadline } from './azure-deadline.ts';
import { DEFAULT_STORAGE_TIMEOUTS, sliced, type StorageTimeouts } from '../timeouts.ts';

const MiB = 1024 * 1024;


const SINGLE_PUT_BYTES = 256 * MiB;
const STAGE_BUFFER_BYTES = 8 * MiB;
const STAGE_CONCURRENCY = 4;
/** The Blob Batch API's limit of sub-requests per batch. */
const DELETE_BATCH = 256;
const DELETE_PARALLELISM = 4;
const SINGLE_DELETE_PARALLELISM = 32;
/** Statuses meaning "this server or credential does not do batches", as opposed to a passing failure. */
const BATCH_REFUSED_STATUS = new Set([400, 403, 405, 501]);
/** How long deletes go one by one after a batch failed for another reason. */
const BATCH_PAUSE_MS = 60_000;

/** One Azure blob container location. */
export class AzureStore extends MultipartStore implements ObjectStore {
  readonly driverName = 'AzureStorage';
  readonly capabilities: StorageCapabilities;
  readonly minPartBytes = 1;
  readonly container: ContainerClient;
  readonly keys: KeyPrefix;
  private readonly batch: BlobBatchClient;
  private readonly sharedKey: StorageSharedKeyCredential | undefined;
  private readonly secrets: (string | undefined)[];
  readonly listPageSize: number;
  private readonly createContainer: boolean;
  protected readonly multipart: AzureMultipart;
  private readonly uncommitted: AzureUncommitted;
  /** Until when (epoch ms) deletes skip batches: Infinity once the server refused one. */
  private batchPausedUntil = 0;

  constructor(params: AzureParams, env: NodeJS.ProcessEnv, timeouts: StorageTimeouts = DEFAULT_STORAGE_TIMEOUTS) {
    super();
    const accountKey = params.azure_account_key ?? env.REGISTRY_STORAGE_AZURE_ACCOUNTKEY;
    const sas = params.sas_token?.replace(/^\?/, '');
    if (!accountKey && !sas) {
      throw new StorageError('needs azure_account_key (or REGISTRY_STORAGE_AZURE_ACCOUNTKEY) or sas_token', { driver: this.driverName, operation: 'configure' });
    }
    const endpoint = (params.endpoint_url ?? `https://${params.azure_account_name}.blob.core.windows.net`).replace(/\/+$/, '');
    this.sharedKey = accountKey ? new StorageSharedKeyCredential(params.azure_account_name, accountKey) : undefined;
    const retryOptions = { maxTries: timeouts.attempts };
    const service = this.sharedKey
      ? new BlobServiceClient(endpoint, this.sharedKey, { retryOptions })
      : new BlobServiceClient(`${endpoint}?${sas}`, new AnonymousCredential(), { retryOptions });
    addIdleDeadline(service, timeouts);
    this.container = service.getContainerClient(params.azure_container);
    // Batches get no retries of their own: the one-by-one fallback is the retry.
    const batchPipeline = newPipeline(this.sharedKey ?? new AnonymousCredential(), { retryOptions: { maxTries: 1 } });
    this.batch = new BlobBatchClient(this.container.url, batchPipeline);
    addIdleDeadline(batchPipeline, timeouts);
    this.secrets = [accountKey, sas];
    this.keys = new KeyPrefix(params.storage_path);
    this.listPageSize = params.list_page_size ?? 5000;
    this.createContainer = params.create_container ?? false;
    this.capabilities = {
      signedUrls: this.sharedKey !== undefined,
      nativeBatchDelete: true,
      maxBatchDeleteKeys: DELETE_BATCH,
      serverSideCopy: true,
      listsIncompleteUploads: true,
    };
    this.multipart = new AzureMultipart(this);
    this.uncommitted = new AzureUncommitted(this, this.multipart);
  }

  /** Maps an SDK error for this store, scrubbing its credentials from the message. */
  error(error: unknown, operation: string, key?: string): StorageError {
    return azureError(error, operation, key, this.secrets);
  }

  /** The block blob client of `key`. */
  blob(key: string): ReturnType<ContainerClient['getBlockBlobClient']> {
    return this.container.getBlockBlobClient(this.keys.toBackend(key));
  }

  async put(key: string, body: Readable | Buffer, options: WriteOptions = {}): Promise<ObjectStat> {
    const blob = this.blob(key);
    const headers = { blobHTTPHeaders: { blobContentType: options.contentType }, abortSignal: options.signal };
    try {
      if (options.contentLength !== undefined && options.contentLength <= SINGLE_PUT_BYTES) {
        // Put Blob's Content-MD5 (the SDK forwards `transactionalContentMD5` without declaring it):
        // the service refuses a body that hashes otherwise, storing nothing.
        const checked = options.contentMd5 ? { ...headers, transactionalContentMD5: options.contentMd5 } : headers;
        // A Buffer goes as a stream of slices, re-made per try, so the idle deadline (azure-deadline.ts) sees it move.
        const response = await blob.upload(Buffer.isBuffer(body) ? () => sliced(body) : body, options.contentLength, checked);
        if (response.lastModified) return { key, size: options.contentLength, lastModified: response.lastModified, etag: response.etag };
      } else {
        const stream = Buffer.isBuffer(body) ? Readable.from([body]) : body;
        await blob.uploadStream(stream, STAGE_BUFFER_BYTES, STAGE_CONCURRENCY, headers);
      }
    } catch (error) {
      throw this.error(error, 'put', key);
    }
    // Staged uploads report no size.
    return this.stat(key);
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const whole = !range || (range.start === 0 && range.end === undefined);
    const offset = whole ? 0 : range.start;
    const count = whole || range.end === undefined ? undefined : range.end - range.start + 1;
    try {
      const response = await this.blob(key).download(offset, count, { abortSignal: signal });
      const body = (response.readableStreamBody as Readable | undefined) ?? Readable.from([]);
      // A satisfiable range from offset > 0 has at least one byte. Azurite answers a range starting
      // exactly at the end with an empty 206 instead of Azure's 416.
      if (offset > 0 && response.contentLength === 0) {
        body.destroy();
        throw new InvalidRangeError(`range starts at ${offset}, past the end of the object`, { driver: this.driverName, operation: 'get', key });
      }
      return body;
    } catch (error) {
      const mapped = this.error(error, 'get', key);
      if (range?.start === 0 && mapped.name === 'InvalidRangeError') return Readable.from([]);
      throw mapped;
    }
  }

  async stat(key: string): Promise<ObjectStat> {
    try {
      const props = await this.blob(key).getProperties();
      return { key, size: props.contentLength ?? 0, lastModified: props.lastModified ?? new Date(0), etag: props.etag };
    } catch (error) {
      throw this.error(error, 'stat', key);
    }
  }

  listUncommittedBlobs(prefix: string, olderThan: Date): AsyncIterable<UncommittedBlob> {
    return this.uncommitted.list(prefix, olderThan);
  }

  discardUncommittedBlob(blob: UncommittedBlob, olderThan: Date): Promise<number | undefined> {
    return this.uncommitted.discard(blob, olderThan);
  }

  exists(key: string): Promise<boolean> {
    return existsBy(this.stat(key));
  }

  async *list(prefix: string): AsyncIterable<ObjectStat> {
    try {
      const pages = this.container.listBlobsFlat({ prefix: this.keys.toBackend(prefix) }).byPage({ maxPageSize: this.listPageSize });
      for await (const page of pages) {
        for (const item of page.segment.blobItems) {
          const key = this.keys.fromBackend(item.name);
          if (key !== undefined) yield { key, size: item.properties.contentLength ?? 0, lastModified: item.properties.lastModified, etag: item.properties.etag };
        }
      }
    } catch (error) {
      throw this.error(error, 'list', prefix);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.blob(key).deleteIfExists({ deleteSnapshots: 'include' });
    } catch (error) {
      throw this.error(error, 'delete', key);
    }
  }

  async deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    const results = await mapBounded(chunk(keys, DELETE_BATCH), DELETE_PARALLELISM, (batch) => this.deleteBatch(batch));
    return { deleted: results.flatMap((r) => r.deleted), failed: results.flatMap((r) => r.failed) };
  }

  /** One Blob Batch request; sub-responses come back in request order. 404 counts as deleted. */
  private async deleteBatch(keys: readonly string[]): Promise<DeleteManyResult> {
    if (Date.now() < this.batchPausedUntil) return deleteEach(keys, SINGLE_DELETE_PARALLELISM, (key) => this.delete(key));
    let response;
    try {
      response = await this.batch.deleteBlobs(keys.map((key) => this.blob(key)), { deleteSnapshots: 'include' });
    } catch (error) {
      // Some servers (and SAS tokens without batch rights) refuse batches for good; Azurite answers
      // 500 to batches under a SAS. Either way these keys go one by one.
      const refused = BATCH_REFUSED_STATUS.has((error as { statusCode?: number }).statusCode ?? 0);
      this.batchPausedUntil = refused ? Infinity : Date.now() + BATCH_PAUSE_MS;
      return deleteEach(keys, SINGLE_DELETE_PARALLELISM, (key) => this.delete(key));
    }
    const deleted: string[] = [];
    const failed: DeleteManyResult['failed'] = [];
    keys.forEach((key, index) => {
      const sub = response.subResponses[index];
      if (sub && (sub.status < 300 || sub.status === 404)) deleted.push(key);
      else failed.push({ key, error: this.error({ statusCode: sub?.status, code: sub?.errorCode, message: sub?.statusMessage ?? 'no sub-response' }, 'deleteMany', key) });
    });
    return { deleted, failed };
  }

  async copy(from: string, to: string): Promise<void> {
    try {
      const poller = await this.blob(to).beginCopyFromURL(this.blob(from).url);
      await poller.pollUntilDone();
    } catch (error) {
      throw this.error(error, 'copy', from);
    }
  }

  async copyFrom(source: ObjectStore, fromKey: string, toKey: string): Promise<ObjectStat | false> {
    // Copy Blob from URL within one account is authorised by the destination's shared key.
    if (!(source instanceof AzureStore) || !this.sharedKey || source.accountUrl() !== this.accountUrl()) return false;
    const stat = await source.stat(fromKey);
    try {
      // If-Match: the copy is the blob just stat'ed, not one written in between.
      const poller = await this.blob(toKey).beginCopyFromURL(source.blob(fromKey).url, { sourceConditions: { ifMatch: stat.etag } });
      await poller.pollUntilDone();
    } catch (error) {
      throw this.error(error, 'copyFrom', fromKey);
    }
    return stat;
  }

  /** The account's blob endpoint (the container URL without the container). */
  accountUrl(): string {
    return this.container.url.slice(0, this.container.url.lastIndexOf('/'));
  }

  async move(from: string, to: string): Promise<void> {
    await this.copy(from, to);
    if (from !== to) await this.delete(from);
  }


  async signedReadUrl(key: string, expiresInSeconds: number): Promise<string> {
    if (!this.sharedKey) {
      throw new UnsupportedError('signed URLs need azure_account_key; a configured SAS token is never handed out', { driver: this.driverName, operation: 'signedReadUrl', key });
    }
    const now = Date.now();
    try {
      // Starting a few minutes back tolerates clock skew between this host and Azure.
      return await this.blob(key).generateSasUrl({
        permissions: BlobSASPermissions.parse('r'), startsOn: new Date(now - 5 * 60_000), expiresOn: new Date(now + expiresInSeconds * 1000),
      });
    } catch (error) {
      throw this.error(error, 'signedReadUrl', key);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.container.listBlobsFlat({ prefix: this.keys.root }).byPage({ maxPageSize: 1 }).next();
    } catch (error) {
      throw this.error(error, 'ping');
    }
  }

  /** Creates the container when absent and allowed (create_container), else requires it. */
  async ensureBucket(): Promise<'created' | 'exists'> {
    try {
      if (this.createContainer) return (await this.container.createIfNotExists()).succeeded ? 'created' : 'exists';
      if (await this.container.exists()) return 'exists';
    } catch (error) {
      throw this.error(error, 'ensureBucket');
    }
    throw new StorageError(`container ${this.container.containerName} does not exist (storage managementState is Unmanaged: create it, or set Managed)`, { driver: this.driverName, operation: 'ensureBucket' });
  }

  async close(): Promise<void> {}
}
