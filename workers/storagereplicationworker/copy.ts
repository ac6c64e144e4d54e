/**
 * Moving one blob's bytes from one location to another, and proving they arrived, with as few
 * requests as that proof allows (every request costs more than the bytes of a typical small blob):
 *
 * - **Server-side** when the destination's driver can read the source directly (`copyFrom`: two
 *   buckets of one S3 endpoint and key, two containers of one Azure account, one GCS endpoint and
 *   service account, two directories of one machine): the bytes never pass through this process.
 *   The bytes are the source object's, and a placement is recorded only once its bytes were
 *   verified (the push hashed them; a replicated copy was verified as below); what is checked is
 *   that the copy is of the object that was verified. With the ETag recorded for the source
 *   placement, one request: a CopyObject under If-Match on it, whose answered ETag must be that
 *   one (S3). Without one (a pushed placement), the driver learns the source's size and ETag beside
 *   the copy (S3: a HEAD in parallel; Azure: If-Match on a stat; GCS: the generation); the copy's
 *   ETag is recorded with its placement, so the next copy from it is one request. A source of
 *   another size is `SourceCorruptError`.
 * - **Buffered** for blobs up to BUFFERED_MAX_BYTES: the source read once per job into memory
 *   (shared by every destination of the job), its size and digest checked, then written with
 *   `contentMd5`, so the destination refuses, storing nothing, bytes that are not those. Two
 *   requests, and nothing to read back.
 * - **Streamed** above that: the source's read stream piped into the destination's `put` with the
 *   known length (bounded memory; the drivers write multipart for large objects), hashed on the way
 *   with its last chunk held back, so bytes that are not the blob fail the write before anything
 *   becomes visible. Nothing is read back: the write completed only with bytes proven to be the
 *   blob. (A whole-object checksum the destination could check needs the hash before the first
 *   byte, or a trailer, which RadosGW refuses; blobs of the buffered size get Content-MD5.)
 *
 * Bytes at the source that are not the blob are `SourceCorruptError`: the caller copies from
 * another placement in the same attempt.
 */
import { createHash, type Hash } from 'node:crypto';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { MAX_CHECKED_PUT_BYTES, NotFoundError, type ObjectStore } from '../../shared/storage/index.ts';

/** How a copy went: inside the backend, or through this process. */
export type CopyMethod = 'server_side' | 'stream';

/** Blobs up to this size are copied through memory with a checked write (at most the job's concurrency of them at once per process). */
export const BUFFERED_MAX_BYTES = Math.min(4 * 1024 * 1024, MAX_CHECKED_PUT_BYTES);

/** The bytes at a location are not the blob: wrong size or wrong digest. */
export class CorruptCopyError extends Error {
  constructor(readonly location: string, detail: string) {
    super(`copy at ${location} is corrupt: ${detail}`);
    this.name = 'CorruptCopyError';
  }
}

/** The source's object is not the blob (wrong size or digest): another placement may hold it. */
export class SourceCorruptError extends CorruptCopyError {
  constructor(readonly source: string, destination: string, detail: string) {
    super(destination, `source ${source}: ${detail}`);
    this.name = 'SourceCorruptError';
  }
}

/** The source location has no object for the blob (yet, or any more). */
export class SourceGoneError extends Error {
  constructor(readonly location: string, options?: { cause?: unknown }) {
    super(`the blob is not at source location ${location}`, options);
    this.name = 'SourceGoneError';
  }
}

/** The algorithm of `digest` as node:crypto names it; throws for one we cannot check. */
function hashOf(digest: string): { hash: Hash; expected: string } {
  const [algorithm, expected] = digest.split(':') as [string, string];
  if (!['sha256', 'sha384', 'sha512'].includes(algorithm)) throw new Error(`cannot verify digest algorithm ${algorithm}`);
  return { hash: createHash(algorithm), expected };
}

/** One blob at one source location, as every destination of a job copies it. */
export interface BlobSource {
  readonly name: string;
  readonly store: ObjectStore;
  readonly key: string;
  readonly digest: string;
  readonly size: number;
  readonly signal?: AbortSignal;
  /** The storage ETag recorded with the source's placement, when there is one. */
  readonly etag?: string;
  /** The blob's bytes, read and checked once per job (buffered copies only). */
  bytes?: Promise<Buffer>;
}

/** How one copy went: its method, and the ETag of the copy when the destination reported one. */
export interface CopyResult {
  readonly method: CopyMethod;
  readonly etag?: string;
}

/** Copies the blob from `source` to `destination` (location `destinationName`); returns how. */
export async function copyBlob(source: BlobSource, destination: ObjectStore, destinationName: string): Promise<CopyResult> {
  const expected = source.etag === undefined ? undefined : { etag: source.etag, size: source.size };
  const copied = await sourceCall(source, () => destination.copyFrom?.(source.store, source.key, source.key, { expected }) ?? Promise.resolve(false as const));
  if (copied) {
    if (copied.size !== source.size) throw new SourceCorruptError(source.name, destinationName, `${copied.size} bytes, expected ${source.size}`);
    return { method: 'server_side', etag: copied.etag };
  }
  if (source.size <= BUFFERED_MAX_BYTES) {
    source.bytes ??= readChecked(source, destinationName);
    const bytes = await source.bytes;
    const stored = await destination.put(source.key, bytes, { contentLength: bytes.length, contentMd5: createHash('md5').update(bytes).digest(), signal: source.signal });
    return { method: 'stream', etag: stored.etag };
  }
  return { method: 'stream', etag: await streamCopy(source, destination, destinationName) };
}

/** Runs a call that reads the source, turning its NotFoundError into SourceGoneError. */
async function sourceCall<T>(source: BlobSource, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof NotFoundError) throw new SourceGoneError(source.name, { cause: error });
    throw error;
  }
}

/** The whole source object in memory, if it is `size` bytes hashing to the digest. */
async function readChecked(source: BlobSource, destinationName: string): Promise<Buffer> {
  const stream = await sourceCall(source, () => source.store.get(source.key, undefined, source.signal));
  const { hash, expected } = hashOf(source.digest);
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stream) {
    bytes += (chunk as Buffer).length;
    if (bytes > source.size) {
      stream.destroy();
      throw new SourceCorruptError(source.name, destinationName, `more than the ${source.size} bytes expected`);
    }
    hash.update(chunk as Buffer);
    chunks.push(chunk as Buffer);
  }
  if (bytes !== source.size) throw new SourceCorruptError(source.name, destinationName, `${bytes} bytes, expected ${source.size}`);
  const actual = hash.digest('hex');
  if (actual !== expected) throw new SourceCorruptError(source.name, destinationName, `bytes hash to ${actual}, not ${source.digest}`);
  return Buffer.concat(chunks, bytes);
}

/**
 * Passes bytes through while hashing them, holding the latest chunk back until the end: then it
 * releases it only when size and digest match, else it fails the stream (and so the write).
 */
class DigestGate extends Transform {
  private readonly hash: Hash;
  private readonly expected: string;
  private held: Buffer | undefined;
  private bytes = 0;

  constructor(private readonly digest: string, private readonly size: number, private readonly source: string, private readonly location: string) {
    super();
    ({ hash: this.hash, expected: this.expected } = hashOf(digest));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.held) this.push(this.held);
    this.held = chunk;
    done();
  }

  override _flush(done: TransformCallback): void {
    const actual = this.hash.digest('hex');
    if (this.bytes !== this.size) return done(new SourceCorruptError(this.source, this.location, `${this.bytes} bytes, expected ${this.size}`));
    if (actual !== this.expected) return done(new SourceCorruptError(this.source, this.location, `bytes hash to ${actual}, not ${this.digest}`));
    if (this.held) this.push(this.held);
    done();
  }
}

/** Pipes the source's read into the destination's put through a DigestGate; returns the copy's ETag. */
async function streamCopy(source: BlobSource, destination: ObjectStore, destinationName: string): Promise<string | undefined> {
  const read = await sourceCall(source, () => source.store.get(source.key, undefined, source.signal));
  const gate = new DigestGate(source.digest, source.size, source.name, destinationName);
  // The SDKs do not notice a failing body stream (they wait for the missing bytes for ever), so a
  // failure of the gate or of the source read aborts the write, which then makes nothing visible.
  const failed = new AbortController();
  let failure: Error | undefined;
  pipeline(read, gate, (error) => {
    if (error) failed.abort((failure = error));
  });
  const signal = source.signal ? AbortSignal.any([source.signal, failed.signal]) : failed.signal;
  try {
    return (await destination.put(source.key, gate, { contentLength: source.size, signal })).etag;
  } catch (error) {
    throw failure ?? error;
  }
}

/**
 * Proves `key` at `store` is blob `digest` of `size` bytes: the whole object read back, counted
 * and hashed (streamed). Throws CorruptCopyError when it is not; storage errors pass through.
 */
export async function verifyAt(store: ObjectStore, location: string, key: string, digest: string, size: number, signal?: AbortSignal): Promise<void> {
  const { hash, expected } = hashOf(digest);
  let bytes = 0;
  for await (const chunk of await store.get(key, undefined, signal)) {
    bytes += (chunk as Buffer).length;
    if (bytes > size) throw new CorruptCopyError(location, `more than the ${size} bytes expected`);
    hash.update(chunk as Buffer);
  }
  if (bytes !== size) throw new CorruptCopyError(location, `${bytes} bytes, expected ${size}`);
  const actual = hash.digest('hex');
  if (actual !== expected) throw new CorruptCopyError(location, `bytes hash to ${actual}, not ${digest}`);
}
