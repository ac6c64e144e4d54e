import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidKeyError } from '../errors.ts';
import { drain } from '../conformance/objects.ts';
import { describeObjectStore } from '../conformance.ts';
import { createObjectStore } from './index.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'quayfleet-local-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describeObjectStore('LocalStorage', { create: () => createObjectStore('LocalStorage', { storage_path: path.join(root, 'registry') }) });

describe('LocalStorage specifics', () => {
  it('refuses a key that is also a directory of other keys (a filesystem cannot hold both)', async () => {
    const store = createObjectStore('LocalStorage', { storage_path: path.join(root, 'specifics') });
    await store.put('a/b', Buffer.from('file'));
    await expect(store.put('a/b/c', Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
    await store.put('x/y/z', Buffer.from('file'));
    await expect(store.put('x/y', Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
    expect((await drain(store.list(''))).map((o) => o.key)).toEqual(['a/b', 'x/y/z']);
    await store.deleteMany(['a/b', 'x/y/z']);
    expect(readdirSync(path.join(root, 'specifics')).filter((n) => !n.startsWith('.'))).toEqual([]);
  });
});
