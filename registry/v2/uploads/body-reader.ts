/**
 * Reads an upload's request body once, in order, handing every byte to `onBytes` (the running
 * sha256 and the pushed-bytes counter) exactly when it is handed out, and cutting the stream into
 * the exact-size pieces storage parts need. Reading is pull-based, so a slow storage write pauses
 * the client (backpressure) instead of buffering the body.
 */
import { finished, Readable } from 'node:stream';
import { OciError } from '../../errors.ts';

/** The body ended before the length the client declared. */
export function truncatedBody(expected: number, received: number): OciError {
  return new OciError('SIZE_INVALID', 'request body is shorter than its declared length', { expected, received });
}

/** The body went on past the length the client declared. */
export function oversizedBody(expected: number): OciError {
  return new OciError('SIZE_INVALID', 'request body is longer than its declared length', { expected });
}

/** A request body being consumed. */
export class BodyReader {
  /** Bytes handed out so far. */
  received = 0;
  /**
   * Why reading failed (the client disconnected, or the body was shorter than declared). Storage
   * drivers wrap errors of the streams they consume, so callers consult this to tell a client
   * fault from a storage fault.
   */
  failure: Error | undefined;
  private readonly iterator: AsyncIterator<Buffer | string>;
  private pending: Buffer | undefined;
  private ended = false;

  /** `signal` stops reading (with its reason) when the request must not continue, e.g. a lost claim. */
  constructor(body: AsyncIterable<Buffer | string>, private readonly onBytes: (chunk: Buffer) => void, private readonly signal?: AbortSignal) {
    this.iterator = body[Symbol.asyncIterator]();
  }

  /** Whether the body has no more bytes (known only after a read found the end). */
  get done(): boolean {
    return this.ended && this.pending === undefined;
  }

  /** The next piece of at most `max` bytes, or undefined at the end of the body. */
  async next(max: number): Promise<Buffer | undefined> {
    let chunk = this.pending;
    this.pending = undefined;
    while (chunk === undefined || chunk.length === 0) {
      if (this.ended) return undefined;
      const result = await this.read();
      if (result.done) {
        this.ended = true;
        return undefined;
      }
      chunk = typeof result.value === 'string' ? Buffer.from(result.value) : result.value;
    }
    if (chunk.length > max) {
      this.pending = chunk.subarray(max);
      chunk = chunk.subarray(0, max);
    }
    this.received += chunk.length;
    this.onBytes(chunk);
    return chunk;
  }

  /** Whether another byte follows; reads ahead at most one chunk. */
  async hasMore(): Promise<boolean> {
    if (this.pending !== undefined) return true;
    while (!this.ended) {
      const result = await this.read();
      if (result.done) this.ended = true;
      else if (result.value.length > 0) {
        this.pending = typeof result.value === 'string' ? Buffer.from(result.value) : result.value;
        return true;
      }
    }
    return false;
  }

  /** A stream of exactly the next `size` bytes; it fails with SIZE_INVALID when the body ends first. */
  take(size: number): Readable {
    return Readable.from(this.takeChunks(size), { objectMode: false });
  }

  /** A stream of everything left. */
  rest(): Readable {
    return Readable.from(this.takeChunks(Infinity), { objectMode: false });
  }

  /** Reads up to `max` bytes into memory (bounded by the caller's part size). */
  async collect(max: number): Promise<{ chunks: Buffer[]; bytes: number }> {
    const chunks: Buffer[] = [];
    let bytes = 0;
    while (bytes < max) {
      const chunk = await this.next(max - bytes);
      if (!chunk) break;
      chunks.push(chunk);
      bytes += chunk.length;
    }
    return { chunks, bytes };
  }

  private async read(): Promise<IteratorResult<Buffer | string>> {
    if (this.signal?.aborted) {
      this.failure = this.signal.reason instanceof Error ? this.signal.reason : new Error('upload aborted');
      throw this.failure;
    }
    try {
      return await this.iterator.next();
    } catch (error) {
      this.failure = new OciError('BLOB_UPLOAD_INVALID', 'the request body could not be read', { reason: (error as Error).message });
      throw this.failure;
    }
  }

  private async *takeChunks(size: number): AsyncGenerator<Buffer> {
    const start = this.received;
    let left = size;
    while (left > 0) {
      const chunk = await this.next(left);
      if (!chunk) {
        if (size === Infinity) return;
        this.failure = truncatedBody(size, this.received - start);
        throw this.failure;
      }
      left -= chunk.length;
      yield chunk;
    }
  }
}

/** Chunks arrivalChunks holds before it pauses the stream (backpressure); each is one socket read. */
const MAX_QUEUED_CHUNKS = 4;

/**
 * The chunks of `stream` as they arrived, each handed out as it is, for BodyReader. Readable's own
 * async iterator reads with `read()`, which joins everything buffered into one new Buffer: on a
 * loaded machine several socket chunks wait between two reads, so every upload byte was copied
 * once more (`fromList`, 4 % of a push's wall time in the registry bench's profile, plus the
 * garbage). Fails as that iterator does: with the stream's error, or a premature close. Leaving
 * early pauses the stream, leaving it unread, as an iterator that is no longer pulled does.
 */
export async function* arrivalChunks(stream: Readable): AsyncGenerator<Buffer | string> {
  const queue: (Buffer | string)[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const onData = (chunk: Buffer | string): void => {
    queue.push(chunk);
    if (queue.length >= MAX_QUEUED_CHUNKS) stream.pause();
    wake?.();
  };
  const stopWatching = finished(stream, (error) => {
    ended = true;
    failure = error ?? undefined;
    wake?.();
  });
  stream.on('data', onData);
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        yield chunk;
        continue;
      }
      if (failure) throw failure;
      if (ended) return;
      stream.resume();
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    stream.off('data', onData);
    stopWatching();
    if (!ended) stream.pause();
  }
}

/** One stream of `first` (when given) followed by `second`. */
export function concatStreams(first: Readable | undefined, second: Readable | AsyncIterable<Buffer>): Readable {
  if (!first) return second instanceof Readable ? second : Readable.from(second, { objectMode: false });
  return Readable.from((async function* concat() {
    yield* first;
    yield* second;
  })(), { objectMode: false });
}
