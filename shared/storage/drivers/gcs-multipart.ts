/**
 * Multipart writes on GCS (service-account mode): each part is its own object under
 * `<root>.quayfleet/multipart/<uploadId>/` and completion composes them into the key, 32 sources per
 * compose request and in rounds above that (GCS composes at most 32 sources, and an object holds at
 * most 1024 components). A `meta` object records the key, so stale uploads can be listed, resumed
 * and aborted like S3's; rewriting a part replaces its object. Resumable upload sessions were not
 * used: GCS cannot list them, and their append-only offsets make a retried part corrupt the object.
 */
import type { Readable } from 'node:stream';
import { chunk, deleteEach, mapBounded } from '../concurrency.ts';
import { NotFoundError, UnsupportedError } from '../errors.ts';
import type { IncompleteUpload, MultipartWriter, ObjectStat } from '../types.ts';
import type { GcsStore } from './gcs-store.ts';
import { assertPartsComplete, isUploadId, newUploadId } from './multipart-ids.ts';

const PART = /\/part-(\d{5})$/;
const COMPOSE_SOURCES = 32;
const MAX_PARTS = 1024;
const COMPOSE_PARALLELISM = 4;
const CLEANUP_PARALLELISM = 16;

interface Marker {
  readonly key: string;
  readonly contentType?: string;
}

/** The multipart half of the key-file GCS driver. */
export class GcsMultipart {
  constructor(private readonly store: GcsStore) {}

  private dir(uploadId: string): string {
    return this.store.keys.reserved(`multipart/${uploadId}/`);
  }

  async create(key: string, contentType?: string): Promise<MultipartWriter> {
    const uploadId = newUploadId();
    try {
      await this.store.upload(`${this.dir(uploadId)}meta`, Buffer.alloc(0), {
        contentLength: 0, metadata: { key: encodeURIComponent(key), contenttype: contentType ?? '' },
      });
    } catch (error) {
      throw this.store.error(error, 'createMultipart', key);
    }
    return this.writer(key, uploadId);
  }

  async resume(key: string, uploadId: string): Promise<MultipartWriter> {
    if ((await this.readMarker(uploadId, 'resumeMultipart', key))?.key !== key) throw this.gone('resumeMultipart', key);
    return this.writer(key, uploadId);
  }

  list(prefix: string, olderThan?: Date): AsyncIterable<IncompleteUpload> {
    return this.store.listBackend(this.store.keys.reserved('multipart/'), 'listMultipartUploads', (name, metadata) => {
      const match = /\/([0-9a-f]{32})\/meta$/.exec(name);
      const encoded = metadata.metadata?.key;
      if (!match || typeof encoded !== 'string') return undefined;
      const key = decodeURIComponent(encoded);
      const initiated = new Date(metadata.timeCreated ?? 0);
      if (!key.startsWith(prefix) || (olderThan && initiated >= olderThan)) return undefined;
      return { key, uploadId: match[1] as string, initiated };
    });
  }

  async abort(key: string, uploadId: string): Promise<void> {
    if ((await this.readMarker(uploadId, 'abortMultipartUpload', key))?.key !== key) return;
    await this.removeDir(uploadId, 'abortMultipartUpload', key);
  }

  private gone(operation: string, key: string): NotFoundError {
    return new NotFoundError('no such multipart upload (completed or aborted)', { driver: this.store.driverName, operation, key });
  }

  private async readMarker(uploadId: string, operation: string, key: string): Promise<Marker | undefined> {
    if (!isUploadId(uploadId)) return undefined;
    try {
      const [metadata] = await this.store.file(`${this.dir(uploadId)}meta`).getMetadata();
      const custom = metadata.metadata ?? {};
      return { key: decodeURIComponent(String(custom.key ?? '')), contentType: custom.contenttype ? String(custom.contenttype) : undefined };
    } catch (error) {
      const mapped = this.store.error(error, operation, key);
      if (mapped instanceof NotFoundError) return undefined;
      throw mapped;
    }
  }

  /** Deletes every object of an upload (parts, intermediate composites, the marker last). */
  private async removeDir(uploadId: string, operation: string, key: string): Promise<void> {
    const names: string[] = [];
    for await (const name of this.store.listBackend(this.dir(uploadId), operation, (n) => n)) names.push(name);
    const meta = `${this.dir(uploadId)}meta`;
    const result = await deleteEach(names.filter((n) => n !== meta), CLEANUP_PARALLELISM, (name) => this.deleteObject(name));
    if (result.failed.length > 0) throw this.store.error(result.failed[0]?.error, operation, key);
    await this.deleteObject(meta);
  }

  private async deleteObject(name: string): Promise<void> {
    await this.store.file(name).delete({ ignoreNotFound: true });
  }

  private writer(key: string, uploadId: string): MultipartWriter {
    const { store } = this;
    return {
      key,
      uploadId,
      writePart: async (partNumber: number, body: Readable | Buffer, size: number): Promise<void> => {
        if (partNumber > MAX_PARTS) {
          throw new UnsupportedError(`GCS composes at most ${MAX_PARTS} parts`, { driver: store.driverName, operation: 'writePart', key });
        }
        // Refusing parts of a finished upload keeps orphan part objects from piling up.
        if (!(await this.readMarker(uploadId, 'writePart', key))) throw this.gone('writePart', key);
        try {
          await store.upload(`${this.dir(uploadId)}part-${String(partNumber).padStart(5, '0')}`, body, { contentLength: size });
        } catch (error) {
          throw store.error(error, 'writePart', key);
        }
      },
      complete: async (): Promise<ObjectStat> => {
        const marker = await this.readMarker(uploadId, 'complete', key);
        if (!marker) throw this.gone('complete', key);
        try {
          await this.compose(uploadId, await this.partNames(uploadId, key), store.keys.toBackend(key), marker.contentType);
        } catch (error) {
          throw store.error(error, 'complete', key);
        }
        await this.removeDir(uploadId, 'complete', key);
        return store.stat(key);
      },
      abort: () => this.abort(key, uploadId),
    };
  }

  /** The part objects in order; throws unless they are exactly parts 1..n with n >= 1. */
  private async partNames(uploadId: string, key: string): Promise<string[]> {
    const parts: { name: string; part: number }[] = [];
    for await (const part of this.store.listBackend(`${this.dir(uploadId)}part-`, 'complete', (name) => {
      const number = PART.exec(name)?.[1];
      return number === undefined ? undefined : { name, part: Number(number) };
    })) parts.push(part);
    parts.sort((a, b) => a.part - b.part);
    assertPartsComplete(parts.map((p) => p.part), this.store.driverName, key);
    return parts.map((p) => p.name);
  }

  /** Composes `sources` into `destination`, through intermediate composites when there are more than 32. */
  private async compose(uploadId: string, sources: string[], destination: string, contentType?: string): Promise<void> {
    for (let round = 0; sources.length > COMPOSE_SOURCES; round++) {
      sources = await mapBounded(chunk(sources, COMPOSE_SOURCES), COMPOSE_PARALLELISM, async (group, index) => {
        const name = `${this.dir(uploadId)}compose-${round}-${index}`;
        await this.store.bucket.combine(group.map((n) => this.store.file(n)), this.store.file(name));
        return name;
      });
    }
    const target = this.store.file(destination);
    if (contentType) target.metadata = { ...target.metadata, contentType };
    await this.store.bucket.combine(sources.map((n) => this.store.file(n)), target);
  }
}
