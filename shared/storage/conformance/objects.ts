/** Conformance cases for single objects: keys, streaming, ranges, overwrite, copy, move, missing keys. */
import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { InvalidKeyError, InvalidRangeError, NotFoundError } from '../errors.ts';
import { digestOf, digestOfBuffer, generate, readAll, readSmall } from './data.ts';
import type { SuiteContext } from './context.ts';

const MiB = 1024 * 1024;

/** Keys every driver must refuse, with why. */
export const INVALID_KEYS: readonly [string, string][] = [
  ['', 'empty'],
  ['/a', 'leading slash'],
  ['a/', 'trailing slash'],
  ['a//b', 'empty segment'],
  ['a/./b', 'dot segment'],
  ['a/../b', 'dot-dot segment'],
  ['..', 'dot-dot'],
  ['a\u0000b', 'NUL'],
  ['a\nb', 'newline'],
  ['\ud800x', 'lone surrogate'],
  ['k'.repeat(1025), 'longer than 1024 bytes'],
  ['.quayfleet/tmp/x', 'reserved area'],
];

export function objectCases(ctx: SuiteContext): void {
  const key = (name: string): string => `${ctx.prefix()}${name}`;

  it('refuses invalid keys on every operation before reaching the backend', async () => {
    const store = ctx.store();
    for (const [bad] of INVALID_KEYS) {
      await expect(store.put(bad, Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.get(bad)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.stat(bad)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.exists(bad)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.delete(bad)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.copy(bad, key('ok'))).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.copy(key('ok'), bad)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.move(bad, key('ok'))).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.createMultipart(bad)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.signedReadUrl(bad, 60)).rejects.toBeInstanceOf(InvalidKeyError);
    }
    await expect(drain(store.list('/a'))).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(drain(store.list('a//'))).rejects.toBeInstanceOf(InvalidKeyError);
    const result = await store.deleteMany(['a//b', key('missing')]);
    expect(result.deleted).toEqual([key('missing')]);
    expect(result.failed.map((f) => [f.key, f.error instanceof InvalidKeyError])).toEqual([['a//b', true]]);
  });

  it('accepts keys with spaces, unicode and URL-special characters', async () => {
    const store = ctx.store();
    const odd = key('odd name/ü+&=%?#;,@ 😀 ~!$\'()*');
    await store.put(odd, Buffer.from('odd'));
    expect((await readSmall(await store.get(odd))).toString()).toBe('odd');
    const listed = await drain(store.list(ctx.prefix()));
    expect(listed.map((o) => o.key)).toEqual([odd]);
    await store.copy(odd, key('odd copy+&='));
    expect(await store.exists(key('odd copy+&='))).toBe(true);
    await store.deleteMany([odd, key('odd copy+&=')]);
  });

  it('stores empty objects from a buffer and from a stream', async () => {
    const store = ctx.store();
    const fromBuffer = await store.put(key('empty-buffer'), Buffer.alloc(0));
    expect(fromBuffer.size).toBe(0);
    await store.put(key('empty-stream'), Readable.from([]), { contentLength: 0 });
    for (const name of ['empty-buffer', 'empty-stream']) {
      expect((await store.stat(key(name))).size).toBe(0);
      expect(await readAll(await store.get(key(name)))).toEqual({ size: 0, digest: digestOfBuffer(Buffer.alloc(0)) });
      expect(await readAll(await store.get(key(name), { start: 0 }))).toMatchObject({ size: 0 });
    }
    await store.deleteMany([key('empty-buffer'), key('empty-stream')]);
  });

  it('streams a multi-megabyte object in and out, with and without a known length', async () => {
    const store = ctx.store();
    for (const [name, size, known] of [['known', 12 * MiB + 123, true], ['unknown', 7 * MiB + 5, false]] as const) {
      const data = generate(size, size);
      const stat = await store.put(key(name), data.stream, known ? { contentLength: size } : {});
      expect(stat.size).toBe(size);
      expect(stat.lastModified).toBeInstanceOf(Date);
      expect(Math.abs(stat.lastModified.getTime() - Date.now())).toBeLessThan(10 * 60_000);
      expect(await readAll(await store.get(key(name)))).toEqual({ size, digest: await data.digest });
      await store.delete(key(name));
    }
  });

  it('reads offsets and ranges, clamps ranges past the end, refuses ranges starting past it', async () => {
    const store = ctx.store();
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    await store.put(key('ranged'), bytes);
    const read = async (start: number, end?: number): Promise<Buffer> => readSmall(await store.get(key('ranged'), { start, end }));
    expect(await read(0, 9)).toEqual(bytes.subarray(0, 10));
    expect(await read(990)).toEqual(bytes.subarray(990));
    expect(await read(500, 5000)).toEqual(bytes.subarray(500));
    expect(await read(999, 999)).toEqual(bytes.subarray(999));
    expect(await read(0)).toEqual(bytes);
    await expect(store.get(key('ranged'), { start: 1000 })).rejects.toBeInstanceOf(InvalidRangeError);
    await expect(store.get(key('ranged'), { start: 5000, end: 6000 })).rejects.toBeInstanceOf(InvalidRangeError);
    await expect(store.get(key('ranged'), { start: -1 })).rejects.toBeInstanceOf(InvalidRangeError);
    await expect(store.get(key('ranged'), { start: 10, end: 5 })).rejects.toBeInstanceOf(InvalidRangeError);
    await store.delete(key('ranged'));
  });

  it('overwrites an object with a shorter one', async () => {
    const store = ctx.store();
    await store.put(key('over'), Buffer.alloc(4096, 1));
    await store.put(key('over'), Buffer.from('short'));
    expect((await store.stat(key('over'))).size).toBe(5);
    expect((await readSmall(await store.get(key('over')))).toString()).toBe('short');
    await store.delete(key('over'));
  });

  it('copies and moves objects, replacing the destination', async () => {
    const store = ctx.store();
    const size = 6 * MiB + 7;
    const data = generate(size, 42);
    await store.put(key('src'), data.stream, { contentLength: size });
    await store.put(key('dst'), Buffer.from('old'));
    await store.copy(key('src'), key('dst'));
    expect(await readAll(await store.get(key('src')))).toEqual({ size, digest: await data.digest });
    expect(await readAll(await store.get(key('dst')))).toEqual({ size, digest: await data.digest });
    await store.move(key('dst'), key('moved/deeper'));
    expect(await store.exists(key('dst'))).toBe(false);
    expect(await readAll(await store.get(key('moved/deeper')))).toEqual({ size, digest: await data.digest });
    await store.deleteMany([key('src'), key('moved/deeper')]);
  });

  it('keeps an object whole under concurrent writers of the same key', async () => {
    const store = ctx.store();
    const size = 3 * MiB + 11;
    const seeds = [1, 2, 3, 4];
    await Promise.all(seeds.map((seed) => store.put(key('contended'), generate(size, seed).stream, { contentLength: size })));
    const digests = await Promise.all(seeds.map((seed) => digestOf(size, seed)));
    const stored = await readAll(await store.get(key('contended')));
    expect(stored.size).toBe(size);
    expect(digests).toContain(stored.digest);
    await store.delete(key('contended'));
  });

  it('reports a missing key the same way on every operation', async () => {
    const store = ctx.store();
    const missing = key('never-written');
    await expect(store.get(missing)).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.get(missing, { start: 5, end: 10 })).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.stat(missing)).rejects.toBeInstanceOf(NotFoundError);
    expect(await store.exists(missing)).toBe(false);
    await expect(store.delete(missing)).resolves.toBeUndefined();
    await expect(store.copy(missing, key('copy'))).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.move(missing, key('moved'))).rejects.toBeInstanceOf(NotFoundError);
    expect(await store.deleteMany([missing])).toEqual({ deleted: [missing], failed: [] });
    expect(await store.exists(key('copy'))).toBe(false);
    expect(await store.exists(key('moved'))).toBe(false);
  });

  it('answers ping', async () => {
    await expect(ctx.store().ping()).resolves.toBeUndefined();
  });
}

/** Collects an async iterable (small listings only). */
export async function drain<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}
