import { describe, expect, it } from 'vitest';
import { Batcher } from './batch.ts';

describe('Batcher', () => {
  it('sends a lone call at once, and joins calls made while a batch is in flight into the next one', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const batcher = new Batcher<number, number>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await gate;
      return items.map((i) => i * 10);
    });
    const first = batcher.call(1);
    const rest = [batcher.call(2), batcher.call(3), batcher.call(4)];
    expect(batches).toEqual([[1]]);
    release();
    expect(await Promise.all([first, ...rest])).toEqual([10, 20, 30, 40]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('fails every call of a failing batch, and keeps serving later ones', async () => {
    let fail = true;
    const batcher = new Batcher<number, number>(async (items) => {
      if (fail) throw new Error('database down');
      return items;
    });
    await expect(batcher.call(1)).rejects.toThrow('database down');
    fail = false;
    expect(await batcher.call(2)).toBe(2);
  });

  it('caps a batch at its maximum size', async () => {
    const sizes: number[] = [];
    const batcher = new Batcher<number, number>(async (items) => { sizes.push(items.length); return items; }, 2);
    await Promise.all([1, 2, 3, 4, 5].map((i) => batcher.call(i)));
    expect(sizes).toEqual([1, 2, 2]);
  });
});
