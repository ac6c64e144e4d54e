/**
 * SwiftStorage: OpenStack Swift (and Ceph RadosGW's Swift API), spoken over plain HTTP
 * (`swift-client.ts`) with v1 or Keystone v3 authentication (`swift-auth.ts`). Objects up to
 * `segment_size_bytes` of known length are one PUT; larger ones, those of unknown length and
 * multipart writes are segments joined by a static (or dynamic) large-object manifest
 * (`swift-segments.ts`). Batch deletes use the bulk middleware (`?bulk-delete`), falling back to
 * single deletes where a cluster lacks it. Signed URLs are temp URLs (HMAC-SHA1 with the account's
 * `X-Account-Meta-Temp-URL-Key`).
 */
import { createHash, createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { chunk, deleteEach, mapBounded } from '../concurrency.ts';
import { existsBy, InvalidRangeError, NotFoundError, StorageError, UnsupportedError, messageOf, redactSecrets } from '../errors.ts';
import { KeyPrefix } from '../keys.ts';
import type {
  ByteRange, DeleteManyResult, ObjectStat, ObjectStore, StorageCapabilities, WriteOptions,
} from '../types.ts';
import { MultipartStore } from './multipart-store.ts';
import { readBody } from './swift-auth.ts';
import { SwiftClient, encodeName, headerOf } from './swift-client.ts';
import type { SwiftSettings } from './swift-params.ts';
import type { StorageTimeouts } from '../timeouts.ts';
import { SEGMENTS_HEADER, SwiftSegments, slices } from './swift-segments.ts';

const MiB = 1024 * 1024;
/** Names per bulk-delete request (Swift accepts up to `max_deletes_per_request`, 10 000 by default). */
const BULK_DELETE = 1000;
const HEAD_PARALLELISM = 32;
const SINGLE_DELETE_PARALLELISM = 32;
/** How long a verified container is trusted when a 404 has to be told apart from a missing container. */
const CONTAINER_CHECK_MS = 60_000;

/** One entry of a container listing (`format=json`). */
export interface ListedObject {
  readonly name: string;
  readonly bytes: number;
  readonly hash: string;
  readonly lastModified: Date;
}

interface BulkDeleteResponse {
  'Number Deleted'?: number;
  'Response Status'?: string;
  Errors?: [string, string][];
}

/** One Swift container location. */
export class SwiftStore extends MultipartStore implements ObjectStore {
  readonly driverName = 'SwiftStorage';
  readonly capabilities: StorageCapabilities;
  /** Parts of 5 MiB or more keep a static manifest (1000 segments) good for ~5 GB even with small client chunks. */
  readonly minPartBytes = 5 * MiB;
  readonly client: SwiftClient;
  readonly keys: KeyPrefix;
  protected readonly multipart: SwiftSegments;
  private containerSeenAt = 0;
  private bulkDelete = true;
  private tempUrlKeyReady: Promise<void> | undefined;

  constructor(private readonly settings: SwiftSettings, timeouts?: StorageTimeouts) {
    super();
    this.client = new SwiftClient(settings, timeouts);
    this.keys = new KeyPrefix(settings.storagePath);
    this.multipart = new SwiftSegments(this);
    this.capabilities = {
      signedUrls: settings.tempUrlKey !== undefined,
      nativeBatchDelete: true,
      maxBatchDeleteKeys: BULK_DELETE,
      serverSideCopy: true,
      listsIncompleteUploads: true,
    };
  }

  /** Any error as a storage error of this driver, credentials scrubbed. */
  wrap(error: unknown, operation: string, key?: string): StorageError {
    if (error instanceof StorageError) return error;
    return new StorageError(redactSecrets(messageOf(error), this.client.secrets()), { driver: this.driverName, operation, key, cause: error });
  }

  /** NotFoundError for a 404 on `key`, unless the container itself is missing (a configuration error). */
  private async notFound(operation: string, key: string): Promise<StorageError> {
    if (Date.now() - this.containerSeenAt > CONTAINER_CHECK_MS) {
      const response = await this.client.send({ method: 'HEAD' });
      response.resume();
      if (response.statusCode === 404) return new StorageError(`container ${this.settings.container} does not exist`, { driver: this.driverName, operation, key });
      if ((response.statusCode ?? 0) < 300) this.containerSeenAt = Date.now();
    }
    return new NotFoundError('no such object', { driver: this.driverName, operation, key });
  }

  /** HEAD of `key`, NotFoundError when it is missing. */
  private async head(key: string, operation: string): Promise<IncomingMessage> {
    const response = await this.client.send({ method: 'HEAD', object: this.keys.toBackend(key) });
    response.resume();
    if (response.statusCode === 404) throw await this.notFound(operation, key);
    if ((response.statusCode ?? 0) >= 300) throw await this.client.error(response, operation, key);
    return response;
  }

  /** The segment set the object at `key` is made of, or undefined (a plain object, or none). */
  async segmentSetOf(key: string, operation: string): Promise<string | undefined> {
    try {
      return headerOf(await this.head(key, operation), SEGMENTS_HEADER);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  async put(key: string, body: Readable | Buffer, options: WriteOptions = {}): Promise<ObjectStat> {
    const length = options.contentLength ?? (Buffer.isBuffer(body) ? body.length : undefined);
    try {
      // contentMd5 comes with a Buffer: a segmented write has no whole-object check, so it is checked here first.
      const md5 = options.contentMd5 && Buffer.isBuffer(body) ? createHash('md5').update(body).digest() : undefined;
      if (md5 && options.contentMd5 && !md5.equals(options.contentMd5)) {
        throw new StorageError('body does not hash to contentMd5; nothing written', { driver: this.driverName, operation: 'put', key });
      }
      if (length === undefined || length > this.settings.segmentBytes) return await this.putSegmented(key, body, length, options);
      const previous = await this.segmentSetOf(key, 'put');
      const response = await this.client.expect({
        method: 'PUT', object: this.keys.toBackend(key), body, signal: options.signal,
        // ETag on a PUT: Swift refuses (422) a body whose MD5 is not it, storing nothing.
        headers: {
          'content-length': String(length), 'content-type': options.contentType ?? 'application/octet-stream',
          ...(options.contentMd5 ? { etag: options.contentMd5.toString('hex') } : {}),
        },
      }, 'put', key);
      if (previous) await this.multipart.removeSet(previous, key, 'put');
      const modified = headerOf(response, 'last-modified');
      return { key, size: length, lastModified: modified ? new Date(modified) : new Date(), etag: headerOf(response, 'etag') };
    } catch (error) {
      throw this.wrap(error, 'put', key);
    }
  }

  /** A large or unknown-length object: slices of `segment_size_bytes` as the parts of an internal multipart write. */
  private async putSegmented(key: string, body: Readable | Buffer, length: number | undefined, options: WriteOptions): Promise<ObjectStat> {
    const writer = await this.multipart.create(key, options.contentType);
    try {
      const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
      let part = 0;
      let remaining = length;
      for await (const slice of slices(source, this.settings.segmentBytes)) {
        const size = remaining === undefined ? undefined : Math.min(remaining, this.settings.segmentBytes);
        await this.multipart.writeSegment(writer.uploadId, ++part, slice, size, key);
        if (remaining !== undefined && size !== undefined) remaining -= size;
      }
      if (part === 0) await this.multipart.writeSegment(writer.uploadId, 1, Buffer.alloc(0), 0, key);
      return await writer.complete();
    } catch (error) {
      await writer.abort().catch(() => undefined);
      throw error;
    }
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const whole = !range || (range.start === 0 && range.end === undefined);
    const headers: Record<string, string> = whole ? {} : { range: `bytes=${range.start}-${range.end ?? ''}` };
    try {
      const response = await this.client.send({ method: 'GET', object: this.keys.toBackend(key), headers, signal });
      const status = response.statusCode ?? 0;
      if (status === 200 || status === 206) return response;
      if (status === 404) {
        response.resume();
        throw await this.notFound('get', key);
      }
      const error = await this.client.error(response, 'get', key);
      if (error instanceof InvalidRangeError && range?.start === 0) return Readable.from([]); // a range of an empty object
      throw error;
    } catch (error) {
      throw this.wrap(error, 'get', key);
    }
  }

  async stat(key: string): Promise<ObjectStat> {
    try {
      const response = await this.head(key, 'stat');
      const modified = headerOf(response, 'last-modified');
      return { key, size: Number(headerOf(response, 'content-length') ?? 0), lastModified: modified ? new Date(modified) : new Date(0), etag: headerOf(response, 'etag') };
    } catch (error) {
      throw this.wrap(error, 'stat', key);
    }
  }

  exists(key: string): Promise<boolean> {
    return existsBy(this.stat(key));
  }

  async *list(prefix: string): AsyncIterable<ObjectStat> {
    for await (const item of this.listBackend(this.keys.toBackend(prefix), 'list')) {
      const key = this.keys.fromBackend(item.name);
      if (key !== undefined) yield { key, size: item.bytes, lastModified: item.lastModified, etag: item.hash };
    }
  }

  /** Pages through backend objects whose names start with `prefix`, in byte order. */
  async *listBackend(prefix: string, operation: string): AsyncGenerator<ListedObject> {
    let marker = '';
    for (;;) {
      let page: { name: string; bytes: number; hash: string; last_modified: string }[];
      try {
        const response = await this.client.expect({
          method: 'GET', query: { format: 'json', prefix, limit: String(this.settings.listPageSize), ...(marker ? { marker } : {}) },
        }, operation, prefix);
        page = response.statusCode === 204 ? [] : JSON.parse(await readBody(response, 64 * MiB)) as typeof page;
      } catch (error) {
        if (error instanceof NotFoundError) throw new StorageError(`container ${this.settings.container} does not exist`, { driver: this.driverName, operation, key: prefix });
        throw this.wrap(error, operation, prefix);
      }
      for (const item of page) {
        // Swift writes listing times in UTC without a zone; RadosGW adds the Z.
        const at = /[zZ]|[+-]\d\d:?\d\d$/.test(item.last_modified) ? item.last_modified : `${item.last_modified}Z`;
        yield { name: item.name, bytes: item.bytes, hash: item.hash, lastModified: new Date(at) };
      }
      if (page.length < this.settings.listPageSize) return;
      marker = page[page.length - 1]!.name;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      const set = await this.segmentSetOf(key, 'delete');
      if (set) return await this.multipart.retire(key, set, 'delete');
      const result = await this.deleteBackend([this.keys.toBackend(key)]);
      if (result.failed.length > 0) throw result.failed[0]!.error;
    } catch (error) {
      throw this.wrap(error, 'delete', key);
    }
  }

  async deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    // Large objects go one by one (their segments with them); plain ones in bulk requests.
    const sets = await mapBounded(keys, HEAD_PARALLELISM, (key) => this.segmentSetOf(key, 'deleteMany').catch((error: unknown) => error as Error));
    const deleted: string[] = [];
    const failed: DeleteManyResult['failed'] = [];
    const plain: string[] = [];
    const large: string[] = [];
    keys.forEach((key, i) => {
      const set = sets[i];
      if (set instanceof Error) failed.push({ key, error: this.wrap(set, 'deleteMany', key) });
      else (set ? large : plain).push(key);
    });
    const single = await deleteEach(large, SINGLE_DELETE_PARALLELISM, (key) => this.delete(key));
    const bulk = await this.deleteBackend(plain.map((key) => this.keys.toBackend(key)));
    const keyOf = new Map(plain.map((key) => [this.keys.toBackend(key), key]));
    deleted.push(...single.deleted, ...bulk.deleted.map((name) => keyOf.get(name)!));
    failed.push(...single.failed, ...bulk.failed.map(({ key: name, error }) => ({ key: keyOf.get(name)!, error })));
    return { deleted, failed };
  }

  /** Deletes backend objects by name (bulk where the cluster has it); missing names count as deleted. */
  async deleteBackend(names: readonly string[]): Promise<DeleteManyResult> {
    const results = await mapBounded(chunk(names, BULK_DELETE), 2, (batch) => this.bulkDeleteBatch(batch));
    return { deleted: results.flatMap((r) => r.deleted), failed: results.flatMap((r) => r.failed) };
  }

  private async bulkDeleteBatch(names: readonly string[]): Promise<DeleteManyResult> {
    if (!this.bulkDelete || names.length === 1) return deleteEach(names, SINGLE_DELETE_PARALLELISM, (name) => this.deleteName(name));
    const container = encodeURIComponent(this.settings.container);
    const response = await this.client.send({
      method: 'POST', account: true, query: { 'bulk-delete': '' },
      headers: { 'content-type': 'text/plain', accept: 'application/json' },
      body: Buffer.from(names.map((name) => `/${container}/${encodeName(name)}`).join('\n')),
    }).catch((error: unknown) => error as Error);
    let report: BulkDeleteResponse | undefined;
    if (!(response instanceof Error) && (response.statusCode ?? 0) < 300) {
      report = JSON.parse(await readBody(response).catch(() => '{}') || '{}') as BulkDeleteResponse;
    } else if (!(response instanceof Error)) {
      // A cluster without the bulk middleware (or a proxy refusing it): single deletes from now on.
      if ([400, 404, 405, 501].includes(response.statusCode ?? 0)) this.bulkDelete = false;
      response.resume();
    }
    if (!report || !/^2\d\d/.test(report['Response Status'] ?? '')) return deleteEach(names, SINGLE_DELETE_PARALLELISM, (name) => this.deleteName(name));
    const errors = new Map((report.Errors ?? []).map(([name, status]) => [decodeURIComponent(name.replace(/^\/[^/]+\//, '')), status]));
    const failed = names.filter((name) => errors.has(name) && !/^404/.test(errors.get(name)!))
      .map((name) => ({ key: name, error: new StorageError(`bulk delete: ${errors.get(name)}`, { driver: this.driverName, operation: 'deleteMany', key: name }) }));
    const failedNames = new Set(failed.map((f) => f.key));
    return { deleted: names.filter((name) => !failedNames.has(name)), failed };
  }

  private async deleteName(name: string): Promise<void> {
    await this.client.expect({ method: 'DELETE', object: name }, 'delete', name, [404]).then((r) => r.resume());
  }

  async copy(from: string, to: string): Promise<void> {
    try {
      const source = await this.head(from, 'copy');
      const set = headerOf(source, SEGMENTS_HEADER);
      if (set) return await this.multipart.copySet(set, to, headerOf(source, 'content-type'));
      const previous = await this.segmentSetOf(to, 'copy');
      const container = encodeURIComponent(this.settings.container);
      const response = await this.client.send({
        method: 'PUT', object: this.keys.toBackend(to), headers: { 'x-copy-from': `/${container}/${encodeName(this.keys.toBackend(from))}` },
      });
      response.resume();
      if (response.statusCode === 404) throw await this.notFound('copy', from);
      if ((response.statusCode ?? 0) >= 300) throw await this.client.error(response, 'copy', from);
      if (previous) await this.multipart.removeSet(previous, to, 'copy');
    } catch (error) {
      throw this.wrap(error, 'copy', from);
    }
  }

  async move(from: string, to: string): Promise<void> {
    await this.copy(from, to);
    if (from !== to) await this.delete(from);
  }

  async signedReadUrl(key: string, expiresInSeconds: number): Promise<string> {
    const secret = this.settings.tempUrlKey;
    if (!secret) throw new UnsupportedError('signed URLs need temp_url_key', { driver: this.driverName, operation: 'signedReadUrl', key });
    try {
      this.tempUrlKeyReady ??= this.ensureTempUrlKey(secret).catch((error: unknown) => {
        this.tempUrlKeyReady = undefined;
        throw error;
      });
      await this.tempUrlKeyReady;
      const { storageUrl } = await this.client.session();
      const url = this.client.url(storageUrl, { object: this.keys.toBackend(key) });
      const expires = Math.floor(Date.now() / 1000) + expiresInSeconds;
      // The signature covers the decoded path, as the tempurl middleware sees it.
      const signature = createHmac('sha1', secret).update(`GET\n${expires}\n${decodeURIComponent(url.pathname)}`).digest('hex');
      url.searchParams.set('temp_url_sig', signature);
      url.searchParams.set('temp_url_expires', String(expires));
      return url.toString();
    } catch (error) {
      throw this.wrap(error, 'signedReadUrl', key);
    }
  }

  /** Sets the account's temp URL key unless it (or the second key) already is the configured one, as Quay does. */
  private async ensureTempUrlKey(secret: string): Promise<void> {
    const account = await this.client.expect({ method: 'HEAD', account: true }, 'signedReadUrl');
    if ([headerOf(account, 'x-account-meta-temp-url-key'), headerOf(account, 'x-account-meta-temp-url-key-2')].includes(secret)) return;
    await this.client.expect({ method: 'POST', account: true, headers: { 'x-account-meta-temp-url-key': secret } }, 'signedReadUrl').then((r) => r.resume());
  }

  async ping(): Promise<void> {
    try {
      const response = await this.client.send({ method: 'GET', query: { format: 'json', limit: '1', prefix: this.keys.root } });
      response.resume();
      if (response.statusCode === 404) throw new StorageError(`container ${this.settings.container} does not exist`, { driver: this.driverName, operation: 'ping' });
      if ((response.statusCode ?? 0) >= 300) throw await this.client.error(response, 'ping');
    } catch (error) {
      throw this.wrap(error, 'ping');
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
