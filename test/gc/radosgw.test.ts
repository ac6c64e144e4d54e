/**
 * GC against a real S3 server (Ceph RadosGW) beside LocalStorage: blobs placed in both locations
 * are deleted at both through DeleteObjects batches, shared ones stay, a purge discards an
 * in-progress S3 multipart upload, and the audit finds both locations matching the database.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditStorage } from '../../shared/db/gc/audit.ts';
import { runRepositoryGc, runRepositoryPurge } from '../../shared/db/gc/run.ts';
import { GcTally } from '../../shared/db/gc/tally.ts';
import { uploadKey } from '../../shared/storage/keys.ts';
import { RADOSGW } from '../servers/storage-endpoints.ts';
import { blob, count, createGcFixture, manifest, namespace, objectExists, repository, tag, type GcFixture } from './fixtures.ts';

let f: GcFixture;
beforeAll(async () => {
  f = await createGcFixture('gcradosgw', ['radosgw', 'local_us'], {
    radosgw: ['RadosGWStorage', {
      hostname: RADOSGW.host, port: RADOSGW.port, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey,
      bucket_name: RADOSGW.bucket, storage_path: `gc-test-${randomBytes(4).toString('hex')}`,
    }],
  });
});
afterAll(async () => { await f.close(); });

describe('GC on RadosGW', () => {
  it('deletes collected blobs at every placement, keeps shared ones, and storage matches the database', async () => {
    const ns = await namespace(f, 'rgw', 0);
    const id = await repository(f, ns, 'app');
    const other = await repository(f, ns, 'other');
    const doomed = await Promise.all(Array.from({ length: 40 }, () => blob(f, { locations: ['radosgw', 'local_us'] })));
    const shared = await blob(f, { locations: ['radosgw'] });
    await tag(f, id, 'old', await manifest(f, id, { blobs: [...doomed, shared] }), { endMs: Date.now() - 1000 });
    await tag(f, other, 'keep', await manifest(f, other, { blobs: [shared] }));
    const tally = new GcTally();
    expect(await runRepositoryGc(f.pool, f.storage, id, { listener: tally })).toMatchObject({ locked: true, value: { drain: { deleted: 80, failed: 0 } } });
    expect(tally.objects).toBe(80);
    for (const b of doomed.slice(0, 5)) {
      expect(await objectExists(f, b.digest, 'radosgw')).toBe(false);
      expect(await objectExists(f, b.digest, 'local_us')).toBe(false);
    }
    expect(await objectExists(f, shared.digest, 'radosgw')).toBe(true);
    const audit = await auditStorage(f.pool, f.storage, f.storage.locations);
    expect(audit).toMatchObject({ ok: true, storageConsistent: true });
  });

  it('purges a repository with an S3 multipart upload in progress', async () => {
    const ns = await namespace(f, 'rgwpurge', 0);
    const id = await repository(f, ns, 'app');
    const b = await blob(f, { locations: ['radosgw'] });
    await tag(f, id, 'x', await manifest(f, id, { blobs: [b] }));
    const uuid = crypto.randomUUID();
    const store = f.storage.store('radosgw');
    const writer = await store.createMultipart(uploadKey(uuid));
    await writer.writePart(1, randomBytes(5 * 1024 * 1024), 5 * 1024 * 1024);
    await f.pool.query(`INSERT INTO blobupload (repository_id, uuid, location_id, storage_metadata) VALUES ($1, $2, $3, $4)`,
      [id, uuid, f.locationIds.get('radosgw'), JSON.stringify({ uploadId: writer.uploadId, parts: 1 })]);
    await f.pool.query(`UPDATE repository SET state = 3 WHERE id = $1`, [id]);
    await f.pool.query(`INSERT INTO deletedrepository (repository_id, original_name) VALUES ($1, 'app')`, [id]);
    expect(await runRepositoryPurge(f.pool, f.storage, id)).toMatchObject({ locked: true, value: { purge: { done: true } } });
    expect(await count(f, 'repository', 'id = $1', [id])).toBe(0);
    expect(await objectExists(f, b.digest, 'radosgw')).toBe(false);
    const open = [];
    for await (const upload of store.listMultipartUploads('uploads/')) if (upload.key === uploadKey(uuid)) open.push(upload);
    expect(open).toEqual([]);
  });
});
