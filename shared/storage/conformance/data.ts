/**
 * Test and benchmark data: deterministic byte streams of any length that are hashed as they are
 * produced, and a reader that hashes a stream as it is consumed. Nothing holds a whole object in
 * memory: chunks are zero-copy views into one shared 4 MiB random pool.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

const POOL = randomBytes(4 * 1024 * 1024);
const CHUNK = 256 * 1024;

/** A stream of `size` bytes whose content is determined by `seed`, and its digest once fully read. */
export interface GeneratedData {
  readonly stream: Readable;
  readonly size: number;
  /** `sha256:<hex>` of the bytes, resolved once the stream has been fully consumed. */
  readonly digest: Promise<string>;
}

/** Bytes of chunk `index` of seed `seed`: a view into the pool, different per seed and index. */
function chunkOf(seed: number, index: number, length: number): Buffer {
  const offset = Math.abs((seed * 2_654_435_761 + index * 40_503) % (POOL.length - CHUNK));
  return POOL.subarray(offset, offset + length);
}

/**
 * A deterministic stream of `size` bytes for `seed`, hashed while it is produced unless `hash` is
 * false (benchmarks, where hashing would be the bottleneck; `digest` then resolves to '').
 */
export function generate(size: number, seed: number, { hash: hashing = true } = {}): GeneratedData {
  const hash = hashing ? createHash('sha256') : undefined;
  let resolve!: (digest: string) => void;
  const digest = new Promise<string>((r) => { resolve = r; });
  async function* produce(): AsyncGenerator<Buffer> {
    let index = 0;
    for (let sent = 0; sent < size; index++) {
      const bytes = chunkOf(seed, index, Math.min(CHUNK, size - sent));
      hash?.update(bytes);
      sent += bytes.length;
      yield bytes;
    }
    resolve(hash ? `sha256:${hash.digest('hex')}` : '');
  }
  return { stream: Readable.from(produce(), { objectMode: false }), size, digest };
}

/** The digest of what `generate(size, seed)` produces, without keeping the bytes. */
export async function digestOf(size: number, seed: number): Promise<string> {
  return (await readAll(generate(size, seed).stream)).digest;
}

/** Consumes `stream`, returning its length and `sha256:<hex>` digest. */
export async function readAll(stream: Readable): Promise<{ size: number; digest: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { size, digest: `sha256:${hash.digest('hex')}` };
}

/** Consumes a small stream into a Buffer (only for objects of a few KiB in tests). */
export async function readSmall(stream: Readable, maxBytes = 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new Error(`readSmall: stream is longer than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The `sha256:<hex>` digest of a buffer. */
export function digestOfBuffer(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
