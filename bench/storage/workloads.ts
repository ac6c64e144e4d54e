/**
 * The storage benchmark's workloads. Objects are written, read back and deleted in rounds of
 * `concurrency` objects, so a backend never holds more than one round (RadosGW's memstore is bounded: radosgw-up.sh)
 * while write and read times are still measured separately. Data is generated, never buffered.
 */
import { mapBounded } from '../../shared/storage/concurrency.ts';
import { generate } from '../../shared/storage/conformance/data.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';

/** Throughput of one measured phase. */
export interface Phase {
  readonly objects: number;
  readonly bytes: number;
  readonly seconds: number;
  /** 10^6 bytes per second. */
  readonly mbPerSec: number;
  readonly objectsPerSec: number;
}

function phase(objects: number, bytes: number, seconds: number): Phase {
  const round = (n: number): number => Math.round(n * 100) / 100;
  return { objects, bytes, seconds: round(seconds), mbPerSec: round(bytes / 1e6 / seconds), objectsPerSec: round(objects / seconds) };
}

/** Consumes a read stream, counting bytes (no hashing: the benchmark measures the storage path). */
async function drain(stream: AsyncIterable<Buffer>): Promise<number> {
  let size = 0;
  for await (const chunk of stream) size += chunk.length;
  return size;
}

/** Writes then reads `count` objects of `size` bytes in rounds of `concurrency`, deleting each round. */
export async function writeRead(store: Pick<ObjectStore, 'put' | 'get' | 'deleteMany'>, prefix: string, count: number, size: number, concurrency: number): Promise<{ write: Phase; read: Phase }> {
  let writeSeconds = 0;
  let readSeconds = 0;
  for (let first = 0; first < count; first += concurrency) {
    const keys = Array.from({ length: Math.min(concurrency, count - first) }, (_, i) => `${prefix}${first + i}`);
    let started = performance.now();
    await mapBounded(keys, concurrency, (key, i) => store.put(key, generate(size, first + i, { hash: false }).stream, { contentLength: size }));
    writeSeconds += (performance.now() - started) / 1000;
    started = performance.now();
    const sizes = await mapBounded(keys, concurrency, async (key) => drain(await store.get(key)));
    readSeconds += (performance.now() - started) / 1000;
    if (sizes.some((s) => s !== size)) throw new Error(`read back ${sizes.join(',')} bytes, expected ${size} each`);
    const { failed } = await store.deleteMany(keys);
    if (failed.length > 0) throw failed[0]!.error;
  }
  return { write: phase(count, count * size, writeSeconds), read: phase(count, count * size, readSeconds) };
}

/** Deletes `count` small objects with `deleteMany`, then as many one request each; returns both rates. */
export async function deletes(store: ObjectStore, prefix: string, count: number, concurrency: number): Promise<{ batch: Phase; oneByOne: Phase; speedup: number }> {
  const write = async (name: string): Promise<string[]> => {
    const keys = Array.from({ length: count }, (_, i) => `${prefix}${name}/${i}`);
    await mapBounded(keys, concurrency, (key) => store.put(key, Buffer.from(key)));
    return keys;
  };
  let keys = await write('batch');
  let started = performance.now();
  const { failed } = await store.deleteMany(keys);
  if (failed.length > 0) throw failed[0]!.error;
  const batch = phase(count, 0, (performance.now() - started) / 1000);
  keys = await write('single');
  started = performance.now();
  await mapBounded(keys, concurrency, (key) => store.delete(key));
  const oneByOne = phase(count, 0, (performance.now() - started) / 1000);
  return { batch, oneByOne, speedup: Math.round((batch.objectsPerSec / oneByOne.objectsPerSec) * 100) / 100 };
}

/** Samples this process's RSS every 50 ms; `stop()` returns the peak in MiB. */
export function rssSampler(): { stop: () => number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 50);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.round(Math.max(peak, process.memoryUsage().rss) / 1024 / 1024);
    },
  };
}
