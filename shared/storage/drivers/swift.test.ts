import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeObjectStore } from '../conformance.ts';
import { RADOSGW_SWIFT } from '../../../test/servers/storage-endpoints.ts';
import { createObjectStore, loadStorageDrivers } from './index.ts';
import { swiftParamsSchema, swiftSettings } from './swift-params.ts';
import { SwiftStore } from './swift.ts';

// The cloud drivers load on demand (drivers/index.ts); this file uses them directly.
await loadStorageDrivers(['SwiftStorage']);

const credentials = { auth_url: RADOSGW_SWIFT.authUrl, swift_user: RADOSGW_SWIFT.user, swift_password: RADOSGW_SWIFT.key, swift_container: RADOSGW_SWIFT.container };
const ROOTS = ['datastorage/registry', 'registry-dlo'];

// Segments of 5 MiB, so the conformance suite's multi-MiB objects (12 MiB known length, 7 MiB
// unknown, the 6 MiB copy) are written, read, copied and deleted as static large objects.
describeObjectStore('SwiftStorage (v1 auth, static large objects) on RadosGW', {
  create: () => createObjectStore('SwiftStorage', {
    ...credentials, auth_version: 1, storage_path: `/${ROOTS[0]}`, temp_url_key: RADOSGW_SWIFT.tempUrlKey,
    segment_size_bytes: 5 * 1024 * 1024, list_page_size: 10,
  }),
});

// Dynamic manifests, credentials from the OpenShift operator's environment variables.
describeObjectStore('SwiftStorage (v1 auth, dynamic large objects) on RadosGW', {
  create: () => createObjectStore('SwiftStorage', {
    auth_url: RADOSGW_SWIFT.authUrl, auth_version: '1', swift_container: RADOSGW_SWIFT.container, storage_path: ROOTS[1],
    large_object: 'dlo', segment_size_bytes: 5 * 1024 * 1024, list_page_size: 10,
  }, { REGISTRY_STORAGE_SWIFT_USER: RADOSGW_SWIFT.user, REGISTRY_STORAGE_SWIFT_PASSWORD: RADOSGW_SWIFT.key }),
});

// The suite sees keys and incomplete uploads only; a segment set left without its object or
// marker would be invisible to it, so the bookkeeping areas are compared on the raw listing, from
// before the first test of this file (a file-level hook) to after the last.
const raw = new SwiftStore(swiftSettings(swiftParamsSchema.parse(credentials), {}));
const bookkeeping = async (root: string): Promise<Set<string>> => {
  const found = new Set<string>();
  for await (const item of raw.listBackend(`${root}/.quayfleet/`, 'test')) found.add(item.name);
  return found;
};
const before = new Map<string, Set<string>>();
beforeAll(async () => {
  for (const root of ROOTS) before.set(root, await bookkeeping(root));
});
afterAll(() => raw.close());

describe('SwiftStorage large objects replaced and deleted', () => {
  it('removes the segments of a large object overwritten by a put, a copy or a multipart write, and on delete', async () => {
    const store = createObjectStore('SwiftStorage', { ...credentials, storage_path: ROOTS[0], segment_size_bytes: 5 * 1024 * 1024 });
    const large = (seed: number): Buffer => Buffer.alloc(11 * 1024 * 1024, seed);
    const setOf = (key: string): Promise<string | undefined> => raw.segmentSetOf(`${ROOTS[0]}/${key}`, 'test');
    try {
      await store.put('replaced/a', large(1));
      const first = await setOf('replaced/a');
      expect(first).toMatch(/^[0-9a-f]{32}$/);
      await store.put('replaced/a', large(2)); // large over large
      expect(await setOf('replaced/a')).not.toBe(first);
      await store.put('replaced/a', Buffer.from('small')); // small over large
      expect(await setOf('replaced/a')).toBeUndefined();
      await store.put('replaced/b', large(3));
      await store.copy('replaced/a', 'replaced/b'); // a plain copy over a large object
      await store.put('replaced/a', large(4));
      const writer = await store.createMultipart('replaced/a'); // a multipart write over a large object
      await writer.writePart(1, Buffer.from('part'), 4);
      await writer.complete();
      expect((await store.stat('replaced/a')).size).toBe(4);
      await store.put('replaced/c', large(5));
      await store.deleteMany(['replaced/a', 'replaced/b', 'replaced/c']);
    } finally {
      await store.close();
    }
  });
});

describe('SwiftStorage bookkeeping after the conformance suites', () => {
  it('leaves no segment or marker behind', async () => {
    for (const root of ROOTS) expect([...await bookkeeping(root)].filter((n) => !before.get(root)!.has(n))).toEqual([]);
  });
});
