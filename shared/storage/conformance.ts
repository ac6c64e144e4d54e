/**
 * The one conformance suite every storage driver runs against a real server (distribution's
 * `testsuites`, without its silent skips). A driver's test file is a few lines:
 *
 *   describeObjectStore('S3Storage on RadosGW', { create: () => createObjectStore('S3Storage', params) });
 *
 * Every test works under its own random prefix; afterEach fails the test when anything (objects or
 * incomplete multipart uploads) is left under it, then cleans up. What a test server cannot do is
 * declared in the target (`verifiesSignatures`) and listed in the README, never skipped silently.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect } from 'vitest';
import type { ObjectStore } from './types.ts';
import { checkedWriteCases } from './conformance/checked-writes.ts';
import { listingCases } from './conformance/listing.ts';
import { multipartCases } from './conformance/multipart.ts';
import { objectCases } from './conformance/objects.ts';
import { signedUrlCases } from './conformance/signed-urls.ts';
import type { ConformanceTarget, SuiteContext } from './conformance/context.ts';

export type { ConformanceTarget } from './conformance/context.ts';

/**
 * Registers the conformance suite for one driver. `target.create()` must return a store (through
 * `createObjectStore`, so the wrapper is included) whose list page size is small (about 10), so
 * pagination is exercised without thousands of objects.
 */
export function describeObjectStore(name: string, target: ConformanceTarget): void {
  describe(`object store conformance: ${name}`, () => {
    let store: ObjectStore | undefined;
    let prefix = '';
    const ctx: SuiteContext = {
      target,
      store: () => {
        if (!store) throw new Error('store not created');
        return store;
      },
      prefix: () => prefix,
    };

    beforeAll(async () => {
      store = await target.create();
      await store.ping();
    });
    afterAll(async () => {
      await store?.close();
    });
    beforeEach(() => {
      prefix = `conformance-${randomBytes(6).toString('hex')}/`;
    });
    afterEach(async () => {
      const leftovers = await cleanUp(ctx.store(), prefix);
      expect(leftovers, `test left objects or uploads under ${prefix}`).toEqual([]);
    });

    objectCases(ctx);
    listingCases(ctx);
    multipartCases(ctx);
    signedUrlCases(ctx);
    checkedWriteCases(ctx);
  });
}

/** Lists what is left under `prefix` (objects and incomplete uploads), removes it, and returns its names. */
async function cleanUp(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of store.list(prefix)) keys.push(object.key);
  const uploads = [];
  for await (const upload of store.listMultipartUploads(prefix)) uploads.push(upload);
  if (keys.length > 0) await store.deleteMany(keys);
  for (const upload of uploads) await store.abortMultipartUpload(upload);
  return [...keys, ...uploads.map((u) => `multipart upload of ${u.key}`)];
}
