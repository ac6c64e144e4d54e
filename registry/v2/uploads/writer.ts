/**
 * How an upload's bytes reach storage, whatever chunk sizes the client sends, without ever holding
 * a blob in memory.
 *
 * Object layout per session (at the location the session writes to):
 * - `uploads/<uuid>`: the multipart write (S3 multipart upload, GCS resumable, Azure blocks, part
 *   files on disk), once the session needs one;
 * - `uploads/<uuid>.staged-<rand>`: the *staged* object, bytes received after the last part.
 *
 * Mapping client chunks onto parts (every part but the last must be >= the store's minPartBytes,
 * 5 MiB on S3):
 * 1. The first request of a session is streamed whole into a staged object (any size). Most
 *    clients (skopeo, podman, docker) send a blob in one PATCH and then an empty PUT: the staged
 *    object then *is* the finished upload, written once, and is moved to its content address.
 * 2. A final request on a session without parts writes staged + body as one object.
 * 3. Otherwise the session goes multipart: a staged object of >= minPartBytes becomes a part by
 *    itself; a smaller one becomes the prefix of the next part. A body of known length is streamed
 *    straight into parts (at most MAX_PART_BYTES each, balanced so each is >= minPartBytes); a body
 *    of unknown length is cut into parts of `partBytes`, buffered one part at a time. What is left
 *    after a non-final request and is too small for a part is staged again.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { UploadStorageState } from '../../../shared/db/uploads.ts';
import { uploadKey } from '../../../shared/storage/keys.ts';
import type { MultipartWriter, ObjectStore } from '../../../shared/storage/types.ts';
import { concatStreams, oversizedBody, type BodyReader } from './body-reader.ts';

/** Largest part written from a body of known length (S3 allows 5 GiB; smaller parts retry cheaper). */
export const MAX_PART_BYTES = 1024 * 1024 * 1024;

export interface AppendRequest {
  readonly store: ObjectStore;
  readonly uuid: string;
  /** The session's storage state before this request. */
  readonly state: UploadStorageState;
  readonly reader: BodyReader;
  /** Exact byte count of this request's body, when the client declared it. */
  readonly length: number | undefined;
  /** This request completes the upload (PUT). */
  readonly final: boolean;
  /** Part size for bodies of unknown length (>= the store's minPartBytes); the memory bound per request. */
  readonly partBytes: number;
}

export interface AppendOutcome {
  /** The session's storage state after this request. */
  readonly state: UploadStorageState;
  /** Objects written by this request that the new state references (delete them if saving fails). */
  readonly created: string[];
  /** Objects the old state referenced and the new one does not (delete them once the new state is saved). */
  readonly obsolete: string[];
  /** For a final request: the key of the one object holding every byte of the upload. */
  readonly objectKey?: string;
}

/**
 * Appends the request body to the session; see the module comment for the layout. A body longer
 * than its declared length fails with SIZE_INVALID before anything is completed, and the objects
 * this request created are deleted again.
 */
export async function appendToUpload(request: AppendRequest): Promise<AppendOutcome> {
  const { state, final } = request;
  if (state.parts === 0 && state.uploadId === undefined && (final || state.tail === undefined)) {
    const outcome = await writeStaged(request);
    await refuseOversized(request, outcome.created);
    return outcome;
  }
  const work = new Appender(request);
  await work.foldLargeTail();
  if (request.length !== undefined) await work.writeKnownLength(request.length);
  else await work.writeUnknownLength();
  await refuseOversized(request, work.created);
  if (!final) return { state: work.state(), created: work.created, obsolete: work.obsolete };
  await (await work.multipart()).complete();
  return { state: { parts: 0 }, created: work.created, obsolete: work.obsolete, objectKey: uploadKey(request.uuid) };
}

// Parts written for an oversized request are never recorded: the next request rewrites them.
async function refuseOversized(request: AppendRequest, created: readonly string[]): Promise<void> {
  if (request.length === undefined || !(await request.reader.hasMore().catch(() => false))) return;
  await request.store.deleteMany(created).catch(() => undefined);
  request.reader.failure = oversizedBody(request.length);
  throw request.reader.failure;
}

/** The key of a new staged object of session `uuid`. */
export function stagedKey(uuid: string): string {
  return `${uploadKey(uuid)}.staged-${randomBytes(6).toString('hex')}`;
}

/** Deletes every object of a session in `state` (a cancel); missing ones are fine. */
export async function discardUploadObjects(store: ObjectStore, uuid: string, state: UploadStorageState): Promise<void> {
  await Promise.all([
    state.tail ? store.deleteMany([state.tail.key]) : undefined,
    state.uploadId === undefined ? undefined : store.abortMultipartUpload({ key: uploadKey(uuid), uploadId: state.uploadId, initiated: new Date(0) }),
  ]);
}

// Cases 1 and 2: one object holds the staged bytes (if any) followed by the whole body.
async function writeStaged(request: AppendRequest): Promise<AppendOutcome> {
  const { store, state, reader, length, final } = request;
  const tail = state.tail;
  if (tail && final && (length === 0 || (length === undefined && !(await reader.hasMore())))) {
    return { state, created: [], obsolete: [], objectKey: tail.key };
  }
  const key = stagedKey(request.uuid);
  const body = length === undefined ? reader.rest() : reader.take(length);
  const prefix = tail ? await store.get(tail.key) : undefined;
  const contentLength = length === undefined ? undefined : (tail?.bytes ?? 0) + length;
  await store.put(key, concatStreams(prefix, body), contentLength === undefined ? {} : { contentLength });
  const bytes = (tail?.bytes ?? 0) + reader.received;
  return {
    state: { parts: 0, tail: { key, bytes } }, created: [key], obsolete: tail ? [tail.key] : [],
    ...(final ? { objectKey: key } : {}),
  };
}

/** Case 3: the multipart path of one request. */
class Appender {
  readonly created: string[] = [];
  readonly obsolete: string[] = [];
  private parts: number;
  private tail: { key: string; bytes: number } | undefined;
  private writer: MultipartWriter | undefined;
  private readonly minPart: number;

  constructor(private readonly request: AppendRequest) {
    this.parts = request.state.parts;
    this.tail = request.state.tail;
    this.minPart = Math.max(1, request.store.minPartBytes);
  }

  /** The session's multipart write, started on first use (a request that only restages needs none). */
  async multipart(): Promise<MultipartWriter> {
    const { store, uuid, state } = this.request;
    this.writer ??= state.uploadId === undefined
      ? await store.createMultipart(uploadKey(uuid))
      : await store.resumeMultipart(uploadKey(uuid), state.uploadId);
    return this.writer;
  }

  state(): UploadStorageState {
    const uploadId = this.writer?.uploadId ?? this.request.state.uploadId;
    return { ...(uploadId === undefined ? {} : { uploadId }), parts: this.parts, ...(this.tail ? { tail: this.tail } : {}) };
  }

  /** A staged object big enough to be a part becomes one, by itself. */
  async foldLargeTail(): Promise<void> {
    if (!this.tail || this.tail.bytes < this.minPart) return;
    await this.writePart(undefined, this.tail.bytes);
  }

  async writeKnownLength(length: number): Promise<void> {
    const total = (this.tail?.bytes ?? 0) + length;
    if (!this.request.final && total < this.minPart) return this.restage(this.request.reader.take(length), total);
    const count = Math.ceil(total / MAX_PART_BYTES);
    for (let i = 0; i < count; i++) {
      const size = Math.floor((total * (i + 1)) / count) - Math.floor((total * i) / count);
      await this.writePart(this.request.reader.take(size - (this.tail?.bytes ?? 0)), size);
    }
  }

  async writeUnknownLength(): Promise<void> {
    const { reader, partBytes, final } = this.request;
    for (;;) {
      const prefix = this.tail?.bytes ?? 0;
      const { chunks, bytes } = await reader.collect(Math.max(1, partBytes - prefix));
      const ended = !(await reader.hasMore());
      const size = prefix + bytes;
      if (size === 0) return;
      if (ended && !final && size < this.minPart) return this.restage(Readable.from(chunks), size);
      await this.writePart(Readable.from(chunks), size);
      if (ended) return;
    }
  }

  // The staged bytes (if any) lead the part; the staged object is then obsolete. `size` counts both.
  private async writePart(body: Readable | undefined, size: number): Promise<void> {
    const prefix = this.tail ? await this.request.store.get(this.tail.key) : undefined;
    const stream = body ? concatStreams(prefix, body) : prefix!;
    await (await this.multipart()).writePart(++this.parts, stream, size);
    if (this.tail) this.obsolete.push(this.tail.key);
    this.tail = undefined;
  }

  private async restage(body: Readable, total: number): Promise<void> {
    const key = stagedKey(this.request.uuid);
    const prefix = this.tail ? await this.request.store.get(this.tail.key) : undefined;
    await this.request.store.put(key, concatStreams(prefix, body), { contentLength: total });
    if (this.tail) this.obsolete.push(this.tail.key);
    this.created.push(key);
    this.tail = { key, bytes: total };
  }
}
