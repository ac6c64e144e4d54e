/**
 * Moving one blob's bytes from one location to another, and proving they arrived.
 *
 * - Server-side copy when the destination's driver can read the source directly (`copyFrom`: two
 *   buckets of one S3 endpoint and key, two containers of one Azure account, two directories of one
 *   machine): the bytes never pass through this process.
 * - Otherwise a stream: the source's read stream piped into the destination's `put` with the known
 *   length. Memory stays at a few chunks (the drivers switch to multipart writes for large objects:
 *   S3 above 64 MiB with 4 x 16 MiB parts in flight, Azure staged blocks above 256 MiB, GCS
 *   resumable sessions above 8 MiB). The stream is hashed on the way and its last chunk held back
 *   until the digest and size match, so a source whose bytes are not what their digest says fails
 *   the write before the destination makes anything visible.
 * - Either way the destination is then read back and hashed (`verifyAt`) before the caller records
 *   a placement.
 */
import { createHash, type Hash } from 'node:crypto';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import type { ObjectStore } from '../../shared/storage/index.ts';

/** How a copy went: inside the backend, or streamed through this process. */
export type CopyMethod = 'server_side' | 'stream';

/** The bytes at a location are not the blob: wrong size or wrong digest. */
export class CorruptCopyError extends Error {
  constructor(readonly location: string, detail: string) {
    super(`copy at ${location} is corrupt: ${detail}`);
    this.name = 'CorruptCopyError';
  }
}

/** The algorithm of `digest` as node:crypto names it; throws for one we cannot check. */
function hashOf(digest: string): { hash: Hash; expected: string } {
  const [algorithm, expected] = digest.split(':') as [string, string];
  if (!['sha256', 'sha384', 'sha512'].includes(algorithm)) throw new Error(`cannot verify digest algorithm ${algorithm}`);
  return { hash: createHash(algorithm), expected };
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

  constructor(private readonly digest: string, private readonly size: number, private readonly location: string) {
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
    if (this.bytes !== this.size) return done(new CorruptCopyError(this.location, `source sent ${this.bytes} bytes, expected ${this.size}`));
    if (actual !== this.expected) return done(new CorruptCopyError(this.location, `source bytes hash to ${actual}, not ${this.digest}`));
    if (this.held) this.push(this.held);
    done();
  }
}

/** Copies `key` (`size` bytes of blob `digest`) from `source` to `destination`; returns how. */
export async function copyBlob(
  input: { source: ObjectStore; destination: ObjectStore; destinationName: string; key: string; digest: string; size: number; signal?: AbortSignal },
): Promise<CopyMethod> {
  const { source, destination, key } = input;
  if (destination.copyFrom && await destination.copyFrom(source, key, key)) return 'server_side';
  const read = await source.get(key, undefined, input.signal);
  const gate = new DigestGate(input.digest, input.size, input.destinationName);
  // The SDKs do not notice a failing body stream (they wait for the missing bytes for ever), so a
  // failure of the gate or of the source read aborts the write, which then makes nothing visible.
  const failed = new AbortController();
  let failure: Error | undefined;
  pipeline(read, gate, (error) => {
    if (error) failed.abort((failure = error));
  });
  const signal = input.signal ? AbortSignal.any([input.signal, failed.signal]) : failed.signal;
  try {
    await destination.put(key, gate, { contentLength: input.size, signal });
  } catch (error) {
    throw failure ?? error;
  }
  return 'stream';
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
