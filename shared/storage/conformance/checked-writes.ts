/**
 * Conformance cases for the two ways a caller learns what the backend stored without reading it
 * back: a put with `contentMd5` (refused, storing nothing, when the bytes hash otherwise) and
 * `copyFrom` another location of the same account (the copy is the source object it reports).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NotFoundError, StorageError } from '../errors.ts';
import type { ObjectStore } from '../types.ts';
import { readSmall } from './data.ts';
import type { SuiteContext } from './context.ts';

const md5 = (bytes: Buffer): Buffer => createHash('md5').update(bytes).digest();

export function checkedWriteCases(ctx: SuiteContext): void {
  const key = (name: string): string => `${ctx.prefix()}${name}`;

  it('stores a put whose body hashes to contentMd5', async () => {
    const store = ctx.store();
    const bytes = randomBytes(200 * 1024);
    const stat = await store.put(key('checked'), bytes, { contentMd5: md5(bytes) });
    expect(stat.size).toBe(bytes.length);
    expect((await readSmall(await store.get(key('checked')))).equals(bytes)).toBe(true);
    await store.delete(key('checked'));
  });

  it('refuses a put whose body does not hash to contentMd5, storing nothing (not even over an existing object)', async () => {
    const store = ctx.store();
    const bytes = randomBytes(64 * 1024);
    const wrong = md5(Buffer.concat([bytes, Buffer.from('x')]));
    await expect(store.put(key('bad'), bytes, { contentMd5: wrong })).rejects.toBeInstanceOf(StorageError);
    if (ctx.target.checksMd5BeforeStoring === false) {
      // The test server's gap: it stored the object the driver then refused to report as written.
      expect(await store.exists(key('bad'))).toBe(true);
      await store.delete(key('bad'));
      return;
    }
    expect(await store.exists(key('bad'))).toBe(false);
    await store.put(key('kept'), Buffer.from('first'));
    await expect(store.put(key('kept'), bytes, { contentMd5: wrong })).rejects.toBeInstanceOf(StorageError);
    expect((await readSmall(await store.get(key('kept')))).toString()).toBe('first');
    await store.delete(key('kept'));
  });

  it('refuses contentMd5 with a stream body or a malformed hash before reaching the backend', async () => {
    const store = ctx.store();
    const bytes = Buffer.from('streamed');
    await expect(store.put(key('s'), Readable.from([bytes]), { contentMd5: md5(bytes), contentLength: bytes.length })).rejects.toBeInstanceOf(StorageError);
    await expect(store.put(key('s'), bytes, { contentMd5: Buffer.alloc(3) })).rejects.toBeInstanceOf(StorageError);
    expect(await store.exists(key('s'))).toBe(false);
  });

  copyFromCases(ctx, key);
}

function copyFromCases(ctx: SuiteContext, key: (name: string) => string): void {
  let peer: ObjectStore | undefined;
  beforeAll(async () => {
    peer = await ctx.target.createPeer?.();
  });
  afterAll(async () => {
    await peer?.close();
  });
  const copies = ctx.target.copiesFromPeer ?? true;

  it('copyFrom: a driver that has it declares a peer location to copy from', () => {
    if (ctx.store().copyFrom) expect(peer, 'ConformanceTarget.createPeer is required with copyFrom').toBeDefined();
  });

  it(copies ? 'copyFrom copies another location of the same account inside the backend and reports the size of the copy'
    : 'copyFrom declines (false) where the credentials cannot authorise a copy inside the backend', async () => {
    const store = ctx.store();
    if (!store.copyFrom || !peer) return;
    const bytes = randomBytes(300 * 1024);
    await peer.put(key('source'), bytes);
    try {
      const result = await store.copyFrom(peer, key('source'), key('copied'));
      if (!copies) {
        expect(result).toBe(false);
        expect(await store.exists(key('copied'))).toBe(false);
        return;
      }
      expect(result && result.size).toBe(bytes.length);
      expect((await readSmall(await store.get(key('copied')))).equals(bytes)).toBe(true);
      // The source is untouched and stays in its own location.
      expect((await peer.stat(key('source'))).size).toBe(bytes.length);
      expect(await store.exists(key('source'))).toBe(false);
      await store.delete(key('copied'));
    } finally {
      await peer.delete(key('source'));
    }
  });

  it('copyFrom with the source as recorded (ETag, size): copies it; a stale ETag is not taken as the object', async () => {
    const store = ctx.store();
    if (!store.copyFrom || !peer || !copies) return;
    const first = randomBytes(2000);
    const stored = await peer.put(key('recorded'), first);
    try {
      if (stored.etag === undefined) return;
      const result = await store.copyFrom(peer, key('recorded'), key('copied'), { expected: { etag: stored.etag, size: first.length } });
      expect(result && result.size).toBe(first.length);
      expect((await readSmall(await store.get(key('copied')))).equals(first)).toBe(true);
      // Replaced since it was recorded (another size): the copy reports the object it copied.
      const second = randomBytes(1000);
      await peer.put(key('recorded'), second);
      const stale = await store.copyFrom(peer, key('recorded'), key('copied'), { expected: { etag: stored.etag, size: first.length } });
      expect(stale && stale.size).toBe(second.length);
      expect((await readSmall(await store.get(key('copied')))).equals(second)).toBe(true);
      await store.delete(key('copied'));
    } finally {
      await peer.delete(key('recorded'));
    }
  });

  it('copyFrom: a missing source is NotFoundError and leaves nothing', async () => {
    const store = ctx.store();
    if (!store.copyFrom || !peer || !copies) return;
    await expect(store.copyFrom(peer, key('absent'), key('copied'))).rejects.toBeInstanceOf(NotFoundError);
    expect(await store.exists(key('copied'))).toBe(false);
  });

  it('copyFrom: a store of another kind is declined (false) without a request', async () => {
    const store = ctx.store();
    if (!store.copyFrom) return;
    // Touching any member of this stand-in would throw: declining must not look at it.
    const foreign = new Proxy({}, { get: (_target, name) => { throw new Error(`copyFrom read ${String(name)} of a foreign store`); } });
    expect(await store.copyFrom(foreign as ObjectStore, key('a'), key('b'))).toBe(false);
  });
}
