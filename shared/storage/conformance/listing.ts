/** Conformance cases for listing and batch deletion. */
import { expect, it } from 'vitest';
import { mapBounded } from '../concurrency.ts';
import type { SuiteContext } from './context.ts';
import { drain } from './objects.ts';

/** Writes `count` tiny objects named `<prefix><name(i)>`, 16 at a time, and returns their keys. */
async function writeMany(ctx: SuiteContext, names: readonly string[]): Promise<string[]> {
  const keys = names.map((name) => `${ctx.prefix()}${name}`);
  await mapBounded(keys, 16, (key) => ctx.store().put(key, Buffer.from(key)));
  return keys;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function listingCases(ctx: SuiteContext): void {
  it('lists every object under a prefix in key order across several pages', async () => {
    const store = ctx.store();
    // 25 objects over a page size of about 10. `-` sorts before `/` and `/` before `0`, so key order
    // differs from a naive directory walk (`page-x` first, `page/01/nested` between 009 and 010).
    const names = Array.from({ length: 23 }, (_, i) => `page/${String(i).padStart(3, '0')}`).concat(['page-x', 'page/01/nested']);
    const keys = await writeMany(ctx, names);
    const listed = await drain(store.list(ctx.prefix()));
    expect(listed.map((o) => o.key)).toEqual([...keys].sort(byteOrder));
    for (const object of listed) {
      expect(object.size).toBe(Buffer.byteLength(object.key));
      expect(object.lastModified).toBeInstanceOf(Date);
    }
    await store.deleteMany(keys);
  });

  it('lists by plain string prefix without leaking sibling prefixes', async () => {
    const store = ctx.store();
    const p = ctx.prefix();
    await writeMany(ctx, ['a/b/x', 'a/b-x', 'a/bc', 'a/c', 'ab']);
    const keysOf = async (prefix: string): Promise<string[]> => (await drain(store.list(`${p}${prefix}`))).map((o) => o.key.slice(p.length));
    expect(await keysOf('a/b/')).toEqual(['a/b/x']);
    expect(await keysOf('a/b')).toEqual(['a/b-x', 'a/b/x', 'a/bc']);
    expect(await keysOf('a/bc')).toEqual(['a/bc']);
    expect(await keysOf('a/bz')).toEqual([]);
    expect(await keysOf('a')).toEqual(['a/b-x', 'a/b/x', 'a/bc', 'a/c', 'ab']);
    expect(await keysOf('a/')).toEqual(['a/b-x', 'a/b/x', 'a/bc', 'a/c']);
    expect(await drain(store.list(`${p}missing/`))).toEqual([]);
    await store.deleteMany(['a/b/x', 'a/b-x', 'a/bc', 'a/c', 'ab'].map((n) => `${p}${n}`));
  });

  it('deletes more keys than one backend batch, counting missing keys as deleted', async () => {
    const store = ctx.store();
    const count = store.capabilities.maxBatchDeleteKeys + 5;
    const keys = await writeMany(ctx, Array.from({ length: count }, (_, i) => `batch/${i}`));
    const missing = [`${ctx.prefix()}batch/missing-1`, `${ctx.prefix()}batch/missing-2`];
    const result = await store.deleteMany([...keys, ...missing]);
    expect(result.failed).toEqual([]);
    expect([...result.deleted].sort()).toEqual([...keys, ...missing].sort());
    expect(await drain(store.list(ctx.prefix()))).toEqual([]);
  });
}
