import { describe, expect, it } from 'vitest';
import { PasswordCache } from './password-cache.ts';

describe('PasswordCache', () => {
  it('remembers a verified pair until it expires, and only that pair', () => {
    const cache = new PasswordCache({ ttlMs: 1000, maxEntries: 10 });
    cache.add('$scrypt$hash', 'secret', 0);
    expect(cache.has('$scrypt$hash', 'secret', 999)).toBe(true);
    expect(cache.has('$scrypt$hash', 'other', 999)).toBe(false);
    expect(cache.has('$scrypt$new-hash', 'secret', 999)).toBe(false);
    expect(cache.has('$scrypt$hash', 'secret', 1000)).toBe(false);
  });

  it('evicts the oldest entry when full', () => {
    const cache = new PasswordCache({ ttlMs: 1000, maxEntries: 2 });
    cache.add('h', 'a', 0);
    cache.add('h', 'b', 0);
    cache.add('h', 'c', 0);
    expect([cache.has('h', 'a', 1), cache.has('h', 'b', 1), cache.has('h', 'c', 1)]).toEqual([false, true, true]);
  });
});
