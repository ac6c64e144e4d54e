/**
 * Large objects on Swift: segments joined by a manifest.
 *
 * Layout under the location's root, per segment set `<id>` (an upload id):
 * - `.quayfleet/segments/<id>/<00001>`: the segments (a multipart write's parts, or the slices of a
 *   large `put`), in part order;
 * - `.quayfleet/multipart/<id>`: a marker naming the key (metadata), present while the set has no
 *   finished object: from the first request of a write until its manifest is written, and again
 *   while a finished object is being deleted. A marker is what `listMultipartUploads` lists, so a
 *   write that crashed, or a delete that crashed half-way, is found and aborted by the stale-upload
 *   sweep like an S3 multipart upload.
 * - the object at its key: a static large object manifest listing the segments with their sizes and
 *   etags (default), or a dynamic one naming the segment prefix (`large_object: dlo`), carrying the
 *   set's id in `X-Object-Meta-Quayfleet-Segments`.
 *
 * A set belongs to exactly one object: copies copy the segments (never the manifest, which would
 * share them: RadosGW copies an SLO as its manifest), so deleting an object deletes its segments.
 * Aborting a set whose key's manifest names it removes only the marker, never the segments.
 */
import { Readable } from 'node:stream';
import { mapBounded } from '../concurrency.ts';
import { NotFoundError, UnsupportedError } from '../errors.ts';
import type { IncompleteUpload, MultipartWriter, ObjectStat } from '../types.ts';
import { assertPartsComplete, isUploadId, newUploadId } from './multipart-ids.ts';
import type { MultipartBackend } from './multipart-store.ts';
import { encodeName, headerOf } from './swift-client.ts';
import type { SwiftStore } from './swift.ts';

/** The header naming the segment set of a large object this driver wrote. */
export const SEGMENTS_HEADER = 'x-object-meta-quayfleet-segments';
/** Swift's default `max_manifest_segments` (RadosGW's `rgw_max_slo_entries`). */
const MAX_SLO_SEGMENTS = 1000;
const MARKER_PARALLELISM = 16;
/** Markers read per listing page, so a large backlog of stale uploads is never held at once. */
const MARKER_PAGE = 500;
const COPY_PARALLELISM = 4;

/** A segment as the container listing shows it. */
export interface Segment {
  readonly name: string;
  readonly part: number;
  readonly bytes: number;
  readonly hash: string;
}

interface Marker {
  readonly key: string;
  readonly contentType?: string;
}

/** The multipart half of the Swift driver, and the segment sets of large objects. */
export class SwiftSegments implements MultipartBackend {
  constructor(private readonly store: SwiftStore) {}

  private markerName(id: string): string {
    return this.store.keys.reserved(`multipart/${id}`);
  }

  /** The prefix of set `id`'s segments (also the DLO manifest's target). */
  segmentPrefix(id: string): string {
    return this.store.keys.reserved(`segments/${id}/`);
  }

  private segmentName(id: string, part: number): string {
    return `${this.segmentPrefix(id)}${String(part).padStart(5, '0')}`;
  }

  async create(key: string, contentType?: string): Promise<MultipartWriter> {
    const id = newUploadId();
    await this.writeMarker(id, key, contentType, 'createMultipart');
    return this.writer(key, id);
  }

  private async writeMarker(id: string, key: string, contentType: string | undefined, operation: string): Promise<void> {
    await this.store.client.expect({
      method: 'PUT', object: this.markerName(id),
      headers: { 'x-object-meta-key': encodeURIComponent(key), ...(contentType ? { 'x-object-meta-content-type': encodeURIComponent(contentType) } : {}) },
    }, operation, key);
  }

  async resume(key: string, uploadId: string): Promise<MultipartWriter> {
    if ((await this.readMarker(uploadId, 'resumeMultipart', key))?.key !== key) throw this.gone('resumeMultipart', key);
    return this.writer(key, uploadId);
  }

  async *list(prefix: string, olderThan?: Date): AsyncIterable<IncompleteUpload> {
    let candidates: { id: string; initiated: Date }[] = [];
    for await (const item of this.store.listBackend(this.store.keys.reserved('multipart/'), 'listMultipartUploads')) {
      const id = item.name.slice(item.name.lastIndexOf('/') + 1);
      if (isUploadId(id) && (!olderThan || item.lastModified < olderThan)) candidates.push({ id, initiated: item.lastModified });
      if (candidates.length >= MARKER_PAGE) {
        yield* await this.readMarkers(candidates, prefix);
        candidates = [];
      }
    }
    yield* await this.readMarkers(candidates, prefix);
  }

  // Swift listings carry no metadata: each marker is read for its key, a page at a time.
  private async readMarkers(candidates: readonly { id: string; initiated: Date }[], prefix: string): Promise<IncompleteUpload[]> {
    const uploads = await mapBounded(candidates, MARKER_PARALLELISM, async ({ id, initiated }) => {
      const marker = await this.readMarker(id, 'listMultipartUploads');
      return marker && marker.key.startsWith(prefix) ? { key: marker.key, uploadId: id, initiated } : undefined;
    });
    return uploads.filter((u): u is IncompleteUpload => u !== undefined);
  }

  async abort(key: string, uploadId: string): Promise<void> {
    if ((await this.readMarker(uploadId, 'abortMultipartUpload', key))?.key !== key) return;
    // A write that crashed after its manifest, or a delete that crashed before removing it: the
    // object still uses these segments, so only the marker goes.
    if ((await this.store.segmentSetOf(key, 'abortMultipartUpload')) === uploadId) {
      await this.deleteNames([this.markerName(uploadId)], 'abortMultipartUpload', key);
      return;
    }
    await this.removeSet(uploadId, key, 'abortMultipartUpload');
  }

  /** Deletes set `id`'s segments, then its marker (so a failure half-way stays listable and is retried). */
  async removeSet(id: string, key: string, operation: string): Promise<void> {
    const names: string[] = [];
    for await (const item of this.store.listBackend(this.segmentPrefix(id), operation)) names.push(item.name);
    await this.deleteNames(names, operation, key);
    await this.deleteNames([this.markerName(id)], operation, key);
  }

  /**
   * Deletes the object at `key` whose manifest names set `id`, then the set: a marker is written
   * first, so a crash between the two steps leaves an upload the stale-upload sweep finishes.
   */
  async retire(key: string, id: string, operation: string): Promise<void> {
    await this.writeMarker(id, key, undefined, operation);
    await this.deleteNames([this.store.keys.toBackend(key)], operation, key);
    await this.removeSet(id, key, operation);
  }

  private async deleteNames(names: readonly string[], operation: string, key: string): Promise<void> {
    const result = await this.store.deleteBackend(names);
    if (result.failed.length > 0) throw this.store.wrap(result.failed[0]!.error, operation, key);
  }

  private gone(operation: string, key: string): NotFoundError {
    return new NotFoundError('no such multipart upload (completed or aborted)', { driver: this.store.driverName, operation, key });
  }

  private async readMarker(id: string, operation: string, key?: string): Promise<Marker | undefined> {
    if (!isUploadId(id)) return undefined;
    const response = await this.store.client.send({ method: 'HEAD', object: this.markerName(id) });
    response.resume();
    if (response.statusCode === 404) return undefined;
    if ((response.statusCode ?? 0) >= 300) throw await this.store.client.error(response, operation, key);
    const encodedKey = headerOf(response, 'x-object-meta-key');
    const contentType = headerOf(response, 'x-object-meta-content-type');
    return encodedKey === undefined ? undefined : { key: decodeURIComponent(encodedKey), contentType: contentType ? decodeURIComponent(contentType) : undefined };
  }

  /** Set `id`'s segments in part order. */
  async segments(id: string, operation: string): Promise<Segment[]> {
    const prefix = this.segmentPrefix(id);
    const out: Segment[] = [];
    for await (const item of this.store.listBackend(prefix, operation)) {
      const part = Number(item.name.slice(prefix.length));
      if (Number.isInteger(part) && part > 0) out.push({ name: item.name, part, bytes: item.bytes, hash: item.hash });
    }
    return out.sort((a, b) => a.part - b.part);
  }

  /** Writes segment `part` of set `id`; `size` undefined streams it with chunked encoding. */
  async writeSegment(id: string, part: number, body: Readable | Buffer, size: number | undefined, key: string): Promise<void> {
    await this.store.client.expect({
      method: 'PUT', object: this.segmentName(id, part), body, headers: size === undefined ? {} : { 'content-length': String(size) },
    }, 'writePart', key);
  }

  /** Copies every segment of set `from` into a new set for `toKey`, then makes it the object at `toKey`. */
  async copySet(from: string, toKey: string, contentType: string | undefined): Promise<void> {
    const id = newUploadId();
    await this.writeMarker(id, toKey, contentType, 'copy');
    try {
      const container = encodeURIComponent(this.store.client.settings.container);
      await mapBounded(await this.segments(from, 'copy'), COPY_PARALLELISM, (segment) => this.store.client.expect({
        method: 'PUT', object: this.segmentName(id, segment.part), headers: { 'x-copy-from': `/${container}/${encodeName(segment.name)}` },
      }, 'copy', toKey));
      await this.finish(toKey, id, contentType, 'copy');
    } catch (error) {
      await this.removeSet(id, toKey, 'copy').catch(() => undefined);
      throw error;
    }
  }

  private writer(key: string, id: string): MultipartWriter {
    return {
      key,
      uploadId: id,
      writePart: async (partNumber: number, body: Readable | Buffer, size: number): Promise<void> => {
        // Refusing parts of a finished upload keeps orphan segments from piling up.
        if (!(await this.readMarker(id, 'writePart', key))) throw this.gone('writePart', key);
        await this.writeSegment(id, partNumber, body, size, key);
      },
      complete: async (): Promise<ObjectStat> => {
        const marker = await this.readMarker(id, 'complete', key);
        if (marker?.key !== key) throw this.gone('complete', key);
        await this.finish(key, id, marker.contentType, 'complete');
        return this.store.stat(key);
      },
      abort: () => this.abort(key, id),
    };
  }

  /**
   * Makes set `id` the object at `key`: writes the manifest (or, when every segment is empty, an
   * empty object), removes the marker, and then the segments of the object it replaced.
   */
  async finish(key: string, id: string, contentType: string | undefined, operation: string): Promise<void> {
    const segments = await this.segments(id, operation);
    assertPartsComplete(segments.map((s) => s.part), this.store.driverName, key);
    const nonEmpty = segments.filter((s) => s.bytes > 0);
    const dlo = this.store.client.settings.largeObject === 'dlo';
    if (!dlo && nonEmpty.length > MAX_SLO_SEGMENTS) {
      throw new UnsupportedError(`a static large object has at most ${MAX_SLO_SEGMENTS} segments (this one ${nonEmpty.length}); use larger parts or large_object: dlo`, { driver: this.store.driverName, operation, key });
    }
    const previous = await this.store.segmentSetOf(key, operation);
    const headers: Record<string, string> = { 'content-type': contentType ?? 'application/octet-stream' };
    const container = encodeURIComponent(this.store.client.settings.container);
    if (nonEmpty.length === 0) {
      await this.store.client.expect({ method: 'PUT', object: this.store.keys.toBackend(key), headers, body: Buffer.alloc(0) }, operation, key);
      await this.removeSet(id, key, operation);
    } else if (dlo) {
      // Static manifests leave empty segments out; a dynamic one takes the whole prefix, so they go first.
      await this.deleteNames(segments.filter((s) => s.bytes === 0).map((s) => s.name), operation, key);
      await this.store.client.expect({
        method: 'PUT', object: this.store.keys.toBackend(key), body: Buffer.alloc(0),
        headers: { ...headers, [SEGMENTS_HEADER]: id, 'x-object-manifest': `${container}/${encodeName(this.segmentPrefix(id))}` },
      }, operation, key);
    } else {
      const manifest = nonEmpty.map((s) => ({ path: `/${this.store.client.settings.container}/${s.name}`, etag: s.hash, size_bytes: s.bytes }));
      await this.store.client.expect({
        method: 'PUT', object: this.store.keys.toBackend(key), query: { 'multipart-manifest': 'put' },
        headers: { ...headers, [SEGMENTS_HEADER]: id }, body: Buffer.from(JSON.stringify(manifest)),
      }, operation, key);
    }
    if (nonEmpty.length > 0) {
      await this.deleteNames([this.markerName(id), ...segments.filter((s) => s.bytes === 0).map((s) => s.name)], operation, key);
    }
    if (previous && previous !== id) await this.removeSet(previous, key, operation);
  }
}

/**
 * Cuts `source` into consecutive streams of at most `limit` bytes without buffering more than one
 * chunk; each stream must be read to its end before the next one is asked for.
 */
export async function* slices(source: Readable, limit: number): AsyncGenerator<Readable> {
  const iterator = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let leftover: Buffer | undefined;
  let ended = false;
  const next = async (): Promise<Buffer | undefined> => {
    if (leftover) {
      const chunk = leftover;
      leftover = undefined;
      return chunk;
    }
    if (ended) return undefined;
    const result = await iterator.next();
    if (result.done) {
      ended = true;
      return undefined;
    }
    return Buffer.isBuffer(result.value) ? result.value : Buffer.from(result.value as Uint8Array);
  };
  for (;;) {
    const first = await next();
    if (first === undefined) return;
    leftover = first;
    yield Readable.from((async function* () {
      for (let sent = 0; sent < limit;) {
        const chunk = await next();
        if (chunk === undefined) return;
        if (chunk.length > limit - sent) {
          leftover = chunk.subarray(limit - sent);
          yield chunk.subarray(0, limit - sent);
          return;
        }
        sent += chunk.length;
        yield chunk;
      }
    })());
  }
}
