/**
 * Mirrored blobs in object storage (RadosGW, S3), recorded as a push records them: the placement
 * keeps the ETag the move to the content address answered (replication's first server-side copy
 * is then one conditional CopyObject), and an upload commit intent is committed before the move,
 * so a sync that dies between the move and its commit leaves an object GC resolves, not a leak.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveUploadIntents } from '../../shared/db/gc/upload-intents.ts';
import { NotFoundError } from '../../shared/storage/errors.ts';
import { blobKey } from '../../shared/storage/keys.ts';
import { fakeImage, startFakeUpstream, type FakeUpstream } from '../../test/helpers/fake-upstream.ts';
import type { TestRegistry } from '../../test/helpers/registry.ts';
import { RADOSGW } from '../../test/servers/storage-endpoints.ts';
import { createMirrorRepo, localTags, makeDue, startMirrorRegistry, syncNow } from './test-support.ts';

let reg: TestRegistry;
let fake: FakeUpstream;

beforeAll(async () => {
  const radosgw = ['RadosGWStorage', {
    hostname: RADOSGW.host, port: RADOSGW.port, is_secure: false, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey,
    bucket_name: RADOSGW.bucket, storage_path: `/mirror-${randomBytes(4).toString('hex')}`,
  }];
  [reg, fake] = await Promise.all([
    startMirrorRegistry({ DISTRIBUTED_STORAGE_CONFIG: { s3: radosgw }, DISTRIBUTED_STORAGE_PREFERENCE: ['s3'] }),
    startFakeUpstream('lib/app'),
  ]);
}, 240_000);

afterAll(async () => {
  await Promise.all([reg?.close(), fake?.stop()]);
});

async function exists(digest: string): Promise<boolean> {
  return reg.deps.storage.store('s3').stat(blobKey(digest)).then(() => true, (error: unknown) => {
    if (error instanceof NotFoundError) return false;
    throw error;
  });
}

describe('mirrored blobs on RadosGW', () => {
  it('each placement records the ETag of its move; no commit intent is left', async () => {
    const image = fakeImage('etag');
    fake.tags.set('etag', image);
    const id = await createMirrorRepo(reg, 'etag', { external: `${fake.authority}/lib/app`, patterns: ['etag'] });
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    const { rows } = await reg.db.query<{ digest: string; etag: string | null }>(
      `SELECT s.content_checksum AS digest, p.etag FROM imagestorageplacement p JOIN imagestorage s ON s.id = p.storage_id
       WHERE s.content_checksum = ANY($1::text[])`, [[...image.blobs.keys()]]);
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row.etag, row.digest).toMatch(/^"?[0-9a-f]{32}"?$/);
    const { rows: intents } = await reg.db.query(`SELECT 1 FROM uploadcommitintent`);
    expect(intents).toHaveLength(0);
  });

  it('a sync that dies between the move and the commit leaves an intent GC resolves by deleting the object', async () => {
    const image = fakeImage('dies');
    const layer = [...image.blobs.keys()][1]!;
    fake.tags.set('dies', image);
    const id = await createMirrorRepo(reg, 'dies', { external: `${fake.authority}/lib/app`, patterns: ['dies'] });
    // The blob's rows fail to commit after its bytes reached the content address (as if the
    // worker died there): a trigger refuses its imagestorage row.
    await reg.db.query(`CREATE FUNCTION refuse_layer() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
    await reg.db.query(`CREATE TRIGGER refuse_layer BEFORE INSERT ON imagestorage FOR EACH ROW
      WHEN (NEW.content_checksum = '${layer}') EXECUTE FUNCTION refuse_layer()`);
    try {
      expect(await syncNow(reg, id)).toBe('FAIL');
    } finally {
      await reg.db.query(`DROP TRIGGER refuse_layer ON imagestorage; DROP FUNCTION refuse_layer()`);
    }
    expect(await localTags(reg, id)).toEqual({});
    expect(await exists(layer)).toBe(true);
    const { rows } = await reg.db.query<{ digest: string }>(`SELECT content_checksum AS digest FROM uploadcommitintent`);
    expect(rows).toEqual([{ digest: layer }]);
    // Inside its lease GC leaves it (the sync may still commit); past it, the object goes.
    expect((await resolveUploadIntents(reg.db, reg.deps.storage)).deleted).toBe(0);
    await reg.db.query(`UPDATE uploadcommitintent SET resolve_after = now() - interval '1 second'`);
    expect(await resolveUploadIntents(reg.db, reg.deps.storage)).toMatchObject({ deleted: 1, kept: 0 });
    expect(await exists(layer)).toBe(false);
    // The next sync copies it again and commits.
    await makeDue(reg, id);
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    expect(await localTags(reg, id)).toEqual({ dies: image.digest });
    expect(await exists(layer)).toBe(true);
  });
});
