/**
 * LocalStorage's read stream: an open file descriptor read from `start` to `end` (exclusive), with
 * a fast path for a pull. Piped into an HTTP response, it reads into one buffer taken from a small
 * pool and reads the next chunk into it only once the socket has taken the last one (the write's
 * callback): a pulled blob allocates nothing per chunk, and N pulls hold N buffers, instead of every
 * chunk's buffer waiting, freed but not yet collected, for the next garbage collection (26-46 MiB
 * of a registry pod's peak). Any other consumer gets fresh chunks, since it may keep one as long as
 * it likes.
 */
import { close, read } from 'node:fs';
import { ServerResponse } from 'node:http';
import { addAbortSignal, Readable } from 'node:stream';

/** Reads of large objects (blobs): 16x fewer reads, event-loop turns and socket writes than 64 KiB. */
const LARGE_READ_BYTES = 1024 * 1024;
const SMALL_READ_BYTES = 64 * 1024;
/** Idle buffers kept for the next pull; more pulls at once allocate more, and those are dropped after. */
const POOL_SIZE = 8;
const pool: Buffer[] = [];

function readAt(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, 0, length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead))));
}

/** Resolves once `destination` has handed `chunk` to the kernel; rejects when it fails or closes first. */
function written(destination: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const onClose = (): void => reject(new Error('response closed before the blob was sent'));
    destination.once('close', onClose);
    destination.write(chunk, (error) => {
      destination.removeListener('close', onClose);
      if (error) reject(error);
      else resolve();
    });
  });
}

/** A read stream of one open file; closes the descriptor when it ends or is destroyed. */
export class LocalFileStream extends Readable {
  private position: number;
  private readonly chunkBytes: number;
  /** The read in flight: the descriptor is closed only after it settles, never under it. */
  private reading: Promise<number> | undefined;
  private pumping = false;

  constructor(private readonly fd: number, start: number, private readonly end: number, signal?: AbortSignal) {
    const chunkBytes = end - start > LARGE_READ_BYTES ? LARGE_READ_BYTES : SMALL_READ_BYTES;
    super({ highWaterMark: chunkBytes });
    this.position = start;
    this.chunkBytes = chunkBytes;
    if (signal) addAbortSignal(signal, this);
  }

  override _read(): void {
    const length = Math.min(this.chunkBytes, this.end - this.position);
    if (length <= 0) {
      this.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafeSlow(length);
    this.track(readAt(this.fd, buffer, length, this.position)).then((bytesRead) => {
      if (this.destroyed) return;
      if (bytesRead === 0) {
        this.push(null); // the file is shorter than its stat said: end where it ends, as fs streams do
        return;
      }
      this.position += bytesRead;
      this.push(bytesRead < length ? buffer.subarray(0, bytesRead) : buffer);
    }, (error: Error) => this.destroy(error));
  }

  /** Into an HTTP response that nothing has read from yet: the pooled path; anything else as any stream. */
  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    if (!(destination instanceof ServerResponse) || this.pumping || this.readableFlowing !== null || this.readableLength > 0 || this.destroyed) {
      return super.pipe(destination, options);
    }
    this.pumping = true;
    void this.pump(destination, options?.end !== false);
    return destination;
  }

  private async pump(destination: ServerResponse, endDestination: boolean): Promise<void> {
    const large = this.end - this.position > SMALL_READ_BYTES;
    const buffer = large ? (pool.pop() ?? Buffer.allocUnsafeSlow(LARGE_READ_BYTES)) : Buffer.allocUnsafe(Math.max(1, this.end - this.position));
    // Back in the pool only when no write can still hold it (a failed or cut write may).
    let reusable = true;
    try {
      while (this.position < this.end && !this.destroyed) {
        const bytesRead = await this.track(readAt(this.fd, buffer, Math.min(buffer.length, this.end - this.position), this.position));
        if (bytesRead === 0 || this.destroyed) break;
        this.position += bytesRead;
        reusable = false;
        // A response that fails or closes reports its own error; this stream just stops.
        if (!(await written(destination, buffer.subarray(0, bytesRead)).then(() => true, () => false))) {
          this.destroy();
          return;
        }
        reusable = true;
      }
      if (this.destroyed) return;
      if (endDestination) destination.end();
      // Ends this stream as a consumed one: 'end', then 'close' (autoDestroy closes the descriptor).
      this.push(null);
      this.resume();
    } catch (error) {
      this.destroy(error as Error);
    } finally {
      if (large && reusable && pool.length < POOL_SIZE) pool.push(buffer);
    }
  }

  private track(reading: Promise<number>): Promise<number> {
    this.reading = reading;
    return reading;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const closeFd = (): void => close(this.fd, (closeError) => callback(error ?? closeError));
    if (this.reading) this.reading.then(closeFd, closeFd);
    else closeFd();
  }
}

/** For tests: how many idle buffers the pool holds. */
export function pooledReadBuffers(): number {
  return pool.length;
}
