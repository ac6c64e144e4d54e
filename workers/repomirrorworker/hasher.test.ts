/** The hashing thread: the same digest as node:crypto, with a bounded window of bytes in flight. */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HASH_WINDOW_BYTES, OffThreadSha256 } from './hasher.ts';

describe('OffThreadSha256', () => {
  it('digests like createHash, slices of a shared buffer included, and makes the writer wait past its window', async () => {
    const data = randomBytes(3 * HASH_WINDOW_BYTES + 12345);
    const hash = new OffThreadSha256();
    let waits = 0;
    for (let offset = 0; offset < data.length; offset += 256 * 1024) {
      const full = hash.update(data.subarray(offset, offset + 256 * 1024));
      if (full) {
        waits += 1;
        await full;
      }
    }
    expect(await hash.digest()).toBe(createHash('sha256').update(data).digest('hex'));
    expect(waits).toBeGreaterThan(0);
  });

  it('hashes streams side by side, each its own digest', async () => {
    const inputs = [randomBytes(1000), randomBytes(70_000), Buffer.alloc(0)];
    const hashes = inputs.map(() => new OffThreadSha256());
    inputs.forEach((input, i) => { if (input.length) void hashes[i]!.update(input); });
    expect(await Promise.all(hashes.map((h) => h.digest()))).toEqual(inputs.map((i) => createHash('sha256').update(i).digest('hex')));
  });
});
