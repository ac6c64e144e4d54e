/**
 * S3 multipart uploads: CreateMultipartUpload / UploadPart / CompleteMultipartUpload / Abort, and
 * ListMultipartUploads for the stale-upload sweep. The writer keeps no state of its own: completion
 * asks the server for the parts (ListParts), so a writer resumed in another process completes the
 * same way, and a part written twice is simply replaced.
 */
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand,
  ListPartsCommand, UploadPartCommand, UploadPartCopyCommand, type CompletedPart,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { mapBounded } from '../concurrency.ts';
import { NotFoundError, StorageError } from '../errors.ts';
import type { IncompleteUpload, MultipartWriter, ObjectStat } from '../types.ts';
import { assertPartsComplete } from './multipart-ids.ts';
import type { S3Store } from './s3.ts';

const MiB = 1024 * 1024;
/** Part size of server-side multipart copies; parallel part copies. */
const COPY_PART_BYTES = 512 * MiB;
const COPY_PARALLELISM = 4;

/** The multipart half of the S3 driver. */
export class S3Multipart {
  constructor(private readonly store: S3Store) {}

  async create(key: string, contentType?: string): Promise<MultipartWriter> {
    const { store } = this;
    try {
      const created = await store.client.send(new CreateMultipartUploadCommand({
        Bucket: store.bucket, Key: store.keys.toBackend(key), ContentType: contentType, ...store.encryption(),
      }));
      if (!created.UploadId) throw new StorageError('server returned no upload id', { driver: store.driverName, operation: 'createMultipart', key });
      return this.writer(key, created.UploadId);
    } catch (error) {
      throw store.error(error, 'createMultipart', key);
    }
  }

  async resume(key: string, uploadId: string): Promise<MultipartWriter> {
    const { store } = this;
    try {
      // Proves the upload exists (NoSuchUpload otherwise) before the caller sends more parts.
      await store.client.send(new ListPartsCommand({ Bucket: store.bucket, Key: store.keys.toBackend(key), UploadId: uploadId, MaxParts: 1 }));
    } catch (error) {
      throw store.error(error, 'resumeMultipart', key);
    }
    return this.writer(key, uploadId);
  }

  async *list(prefix: string, olderThan?: Date): AsyncIterable<IncompleteUpload> {
    const { store } = this;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    try {
      do {
        const page = await store.client.send(new ListMultipartUploadsCommand({
          Bucket: store.bucket, Prefix: store.keys.toBackend(prefix), KeyMarker, UploadIdMarker, MaxUploads: store.settings.listPageSize,
        }));
        for (const upload of page.Uploads ?? []) {
          const key = upload.Key === undefined ? undefined : store.keys.fromBackend(upload.Key);
          const initiated = upload.Initiated ?? new Date(0);
          if (key === undefined || !upload.UploadId || (olderThan && initiated >= olderThan)) continue;
          yield { key, uploadId: upload.UploadId, initiated };
        }
        [KeyMarker, UploadIdMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [undefined, undefined];
      } while (KeyMarker !== undefined);
    } catch (error) {
      throw store.error(error, 'listMultipartUploads', prefix);
    }
  }

  async abort(key: string, uploadId: string): Promise<void> {
    const { store } = this;
    try {
      await store.client.send(new AbortMultipartUploadCommand({ Bucket: store.bucket, Key: store.keys.toBackend(key), UploadId: uploadId }));
    } catch (error) {
      const mapped = store.error(error, 'abortMultipartUpload', key);
      if (!(mapped instanceof NotFoundError)) throw mapped;
    }
  }

  /**
   * Copies `size` bytes from `from` (in `source`, by default this store) to `to` with
   * UploadPartCopy, for objects above CopyObject's limit.
   */
  async copy(from: string, to: string, size: number, source: S3Store = this.store): Promise<void> {
    const { store } = this;
    const writer = await this.create(to);
    try {
      const ranges = Array.from({ length: Math.ceil(size / COPY_PART_BYTES) }, (_, i) => [i * COPY_PART_BYTES, Math.min(size, (i + 1) * COPY_PART_BYTES) - 1] as const);
      await mapBounded(ranges, COPY_PARALLELISM, ([first, last], index) => store.client.send(new UploadPartCopyCommand({
        Bucket: store.bucket, Key: store.keys.toBackend(to), UploadId: writer.uploadId, PartNumber: index + 1,
        CopySource: source.copySource(from), CopySourceRange: `bytes=${first}-${last}`,
      })));
      await writer.complete();
    } catch (error) {
      await writer.abort();
      throw store.error(error, 'copy', from);
    }
  }

  private writer(key: string, uploadId: string): MultipartWriter {
    const { store } = this;
    const Key = store.keys.toBackend(key);
    return {
      key,
      uploadId,
      writePart: async (partNumber: number, body: Readable | Buffer, size: number): Promise<void> => {
        try {
          await store.client.send(new UploadPartCommand({ Bucket: store.bucket, Key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: size }));
        } catch (error) {
          throw store.error(error, 'writePart', key);
        }
      },
      complete: async (): Promise<ObjectStat> => {
        try {
          const parts = await this.parts(key, uploadId);
          await store.client.send(new CompleteMultipartUploadCommand({ Bucket: store.bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
        } catch (error) {
          throw store.error(error, 'complete', key);
        }
        return store.stat(key);
      },
      abort: () => this.abort(key, uploadId),
    };
  }

  /** The uploaded parts in order; throws unless they are exactly parts 1..n with n >= 1. */
  private async parts(key: string, uploadId: string): Promise<CompletedPart[]> {
    const { store } = this;
    const parts: CompletedPart[] = [];
    // Paged by IsTruncated by hand: RadosGW sends NextPartNumberMarker on the last page too, which
    // sends the SDK's paginator round in circles.
    let PartNumberMarker: string | undefined;
    do {
      const page = await store.client.send(new ListPartsCommand({ Bucket: store.bucket, Key: store.keys.toBackend(key), UploadId: uploadId, PartNumberMarker }));
      for (const part of page.Parts ?? []) parts.push({ PartNumber: part.PartNumber, ETag: part.ETag });
      PartNumberMarker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (PartNumberMarker !== undefined);
    parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    assertPartsComplete(parts.map((part) => part.PartNumber ?? 0), store.driverName, key);
    return parts;
  }
}
