/**
 * Multipart writes on Azure: parts are blocks staged on the target blob itself, with block ids
 * derived from the upload id and part number (fixed width, as Azure requires one length per blob),
 * so restaging a part replaces it and a resumed writer finds its blocks. Completion commits this
 * upload's blocks in part order; staged blocks stay invisible until then.
 *
 * Azure has no upload object to list or abort, so each upload also writes a marker blob
 * `<root>.quayfleet/multipart/<uploadId>` holding the key: listing stale uploads lists markers, and
 * aborting deletes the marker. Uncommitted blocks of an aborted upload are left for the
 * stale-upload sweep (`azure-uncommitted.ts`), which discards blocks whose marker is gone.
 */
import type { Readable } from 'node:stream';
import { NotFoundError } from '../errors.ts';
import type { IncompleteUpload, MultipartWriter, ObjectStat } from '../types.ts';
import type { AzureStore } from './azure.ts';
import { assertPartsComplete, isUploadId, newUploadId } from './multipart-ids.ts';

/** Block id of part `partNumber` of upload `uploadId`: base64 of `<uploadId>-<5 digits>`. */
export function blockId(uploadId: string, partNumber: number): string {
  return Buffer.from(`${uploadId}-${String(partNumber).padStart(5, '0')}`).toString('base64');
}

/** The part number a block id encodes for `uploadId`, or undefined for another upload's block. */
function partOf(uploadId: string, id: string): number | undefined {
  const match = /^([0-9a-f]{32})-(\d{5})$/.exec(Buffer.from(id, 'base64').toString());
  return match && match[1] === uploadId ? Number(match[2]) : undefined;
}

/** The multipart half of the Azure driver. */
export class AzureMultipart {
  constructor(private readonly store: AzureStore) {}

  private marker(uploadId: string): ReturnType<AzureStore['container']['getBlockBlobClient']> {
    return this.store.container.getBlockBlobClient(this.store.keys.reserved(`multipart/${uploadId}`));
  }

  async create(key: string, contentType?: string): Promise<MultipartWriter> {
    const uploadId = newUploadId();
    try {
      // Metadata values must be ASCII header values, so the key is stored URI-encoded.
      await this.marker(uploadId).upload('', 0, { metadata: { key: encodeURIComponent(key), contenttype: contentType ?? '' } });
    } catch (error) {
      throw this.store.error(error, 'createMultipart', key);
    }
    return this.writer(key, uploadId);
  }

  async resume(key: string, uploadId: string): Promise<MultipartWriter> {
    const meta = await this.readMarker(uploadId, 'resumeMultipart', key);
    if (meta?.key !== key) throw new NotFoundError('no such multipart upload', { driver: this.store.driverName, operation: 'resumeMultipart', key });
    return this.writer(key, uploadId);
  }

  async *list(prefix: string, olderThan?: Date): AsyncIterable<IncompleteUpload> {
    const { store } = this;
    const markers = store.container.listBlobsFlat({ prefix: store.keys.reserved('multipart/'), includeMetadata: true });
    try {
      for await (const item of markers) {
        const uploadId = item.name.slice(item.name.lastIndexOf('/') + 1);
        const key = item.metadata?.key === undefined ? undefined : decodeURIComponent(item.metadata.key);
        const initiated = item.properties.createdOn ?? item.properties.lastModified;
        if (key === undefined || !isUploadId(uploadId) || !key.startsWith(prefix) || (olderThan && initiated >= olderThan)) continue;
        yield { key, uploadId, initiated };
      }
    } catch (error) {
      throw store.error(error, 'listMultipartUploads', prefix);
    }
  }

  async abort(key: string, uploadId: string): Promise<void> {
    const meta = await this.readMarker(uploadId, 'abortMultipartUpload', key);
    if (meta?.key !== key) return;
    try {
      await this.marker(uploadId).deleteIfExists();
    } catch (error) {
      throw this.store.error(error, 'abortMultipartUpload', key);
    }
  }

  /** Whether upload `uploadId` is still open (its marker exists). */
  async hasMarker(uploadId: string): Promise<boolean> {
    return (await this.readMarker(uploadId, 'hasMarker', uploadId)) !== undefined;
  }

  /** The marker's key and content type, or undefined when the upload is gone. */
  private async readMarker(uploadId: string, operation: string, key: string): Promise<{ key: string; contentType?: string } | undefined> {
    if (!isUploadId(uploadId)) return undefined;
    try {
      const { metadata = {} } = await this.marker(uploadId).getProperties();
      return { key: decodeURIComponent(metadata.key ?? ''), contentType: metadata.contenttype || undefined };
    } catch (error) {
      const mapped = this.store.error(error, operation, key);
      if (mapped instanceof NotFoundError) return undefined;
      throw mapped;
    }
  }

  private writer(key: string, uploadId: string): MultipartWriter {
    const { store } = this;
    const blob = store.blob(key);
    return {
      key,
      uploadId,
      writePart: async (partNumber: number, body: Readable | Buffer, size: number): Promise<void> => {
        try {
          await blob.stageBlock(blockId(uploadId, partNumber), body, size);
        } catch (error) {
          throw store.error(error, 'writePart', key);
        }
      },
      complete: async (): Promise<ObjectStat> => {
        const meta = await this.readMarker(uploadId, 'complete', key);
        if (!meta) throw new NotFoundError('no such multipart upload (completed or aborted)', { driver: store.driverName, operation: 'complete', key });
        try {
          const ids = await this.partIds(key, uploadId);
          await blob.commitBlockList(ids, { blobHTTPHeaders: { blobContentType: meta.contentType } });
          await this.marker(uploadId).deleteIfExists();
        } catch (error) {
          throw store.error(error, 'complete', key);
        }
        return store.stat(key);
      },
      abort: () => this.abort(key, uploadId),
    };
  }

  /** This upload's staged block ids in part order; throws unless they are parts 1..n with n >= 1. */
  private async partIds(key: string, uploadId: string): Promise<string[]> {
    const list = await this.store.blob(key).getBlockList('uncommitted');
    const parts = (list.uncommittedBlocks ?? [])
      .map((block) => ({ id: block.name, part: partOf(uploadId, block.name) }))
      .filter((block): block is { id: string; part: number } => block.part !== undefined)
      .sort((a, b) => a.part - b.part);
    assertPartsComplete(parts.map((block) => block.part), this.store.driverName, key);
    return parts.map((block) => block.id);
  }
}
