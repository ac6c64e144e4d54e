/**
 * Quay's GC scenarios (reference §6.3, §6.4) against real Postgres and LocalStorage: tags past the
 * time machine, manifests nothing uses, blobs nothing references, leases, and what must survive.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMPTY_LAYER_DIGEST } from '../../shared/db/gc/constants.ts';
import { runRepositoryGc } from '../../shared/db/gc/run.ts';
import { GcTally } from '../../shared/db/gc/tally.ts';
import {
  blob, blobRowExists, count, createGcFixture, endTag, label, lease, manifest, manifestExists, namespace, objectExists,
  placeholderBlob, repository, tag, type GcFixture,
} from './fixtures.ts';

let f: GcFixture;
beforeAll(async () => { f = await createGcFixture('gccollect'); });
afterAll(async () => { await f.close(); });

let seq = 0;
/** A namespace (time machine `windowS`) with one repository; returns both ids. */
async function repo(windowS = 0): Promise<{ ns: number; id: number }> {
  const ns = await namespace(f, `ns${++seq}`, windowS);
  return { ns, id: await repository(f, ns, `repo${seq}`) };
}

async function gc(repositoryId: number, nowMs = Date.now() + 1000): Promise<GcTally> {
  const tally = new GcTally();
  const outcome = await runRepositoryGc(f.pool, f.storage, repositoryId, { nowMs, listener: tally });
  if (!outcome.locked) throw new Error('repository lock busy');
  return tally;
}

describe('tag, manifest and blob collection', () => {
  it('collects a deleted tag, its manifest and its unique blobs, rows and objects', async () => {
    const { id } = await repo();
    const [b1, b2] = [await blob(f), await blob(f)];
    const m = await manifest(f, id, { blobs: [b1, b2] });
    await tag(f, id, 'latest', m);
    await endTag(f, id, 'latest');
    const tally = await gc(id);
    expect(await manifestExists(f, m)).toBe(false);
    expect(await blobRowExists(f, b1)).toBe(false);
    expect(await objectExists(f, b1.digest)).toBe(false);
    expect(await objectExists(f, b2.digest)).toBe(false);
    expect(Object.fromEntries(tally.rows)).toMatchObject({ Tag: 1, Manifest: 1, ManifestBlob: 2, ImageStorage: 2, ImageStoragePlacement: 2 });
    expect(tally.objects).toBe(2);
    expect(tally.bytes).toBe(b1.size + b2.size);
    expect(await count(f, 'pendingstoragedeletion')).toBe(0);
  });

  it('keeps the manifests and blobs of the other tag (two tags, unshared manifests)', async () => {
    const { id } = await repo();
    const [b1, b2] = [await blob(f), await blob(f)];
    const m1 = await manifest(f, id, { blobs: [b1] });
    const m2 = await manifest(f, id, { blobs: [b2] });
    await tag(f, id, 't1', m1);
    await tag(f, id, 't2', m2);
    await endTag(f, id, 't1');
    await gc(id);
    expect(await manifestExists(f, m1)).toBe(false);
    expect(await manifestExists(f, m2)).toBe(true);
    expect(await objectExists(f, b2.digest)).toBe(true);
  });

  it('keeps blobs shared by manifests until the last one goes (multiple shared manifests)', async () => {
    const { id } = await repo();
    const [shared, config, only1, only3] = [await blob(f), await blob(f), await blob(f), await blob(f)];
    const m1 = await manifest(f, id, { blobs: [shared, config, only1] });
    const m2 = await manifest(f, id, { blobs: [shared, config] });
    const m3 = await manifest(f, id, { blobs: [only3] });
    await tag(f, id, 't1', m1);
    await tag(f, id, 't2', m2);
    await tag(f, id, 't3', m3);
    await endTag(f, id, 't3');
    await gc(id);
    expect(await objectExists(f, only3.digest)).toBe(false);
    await endTag(f, id, 't1');
    await gc(id);
    expect(await objectExists(f, only1.digest)).toBe(false);
    expect(await objectExists(f, shared.digest)).toBe(true);
    expect(await objectExists(f, config.digest)).toBe(true);
    await endTag(f, id, 't2');
    await gc(id);
    expect(await objectExists(f, shared.digest)).toBe(false);
    expect(await objectExists(f, config.digest)).toBe(false);
  });

  it('keeps a manifest another tag still points to (manifest with two tags)', async () => {
    const { id } = await repo();
    const b = await blob(f);
    const m = await manifest(f, id, { blobs: [b] });
    await tag(f, id, 'a', m);
    await tag(f, id, 'b', m);
    await endTag(f, id, 'a');
    const tally = await gc(id);
    expect(tally.count('Tag')).toBe(1);
    expect(await manifestExists(f, m)).toBe(true);
    expect(await objectExists(f, b.digest)).toBe(true);
  });

  it('collects nothing for an untagged manifest protected by a hidden temp tag (empty GC)', async () => {
    const { id } = await repo();
    const b = await blob(f);
    const m = await manifest(f, id, { blobs: [b] });
    await tag(f, id, '$temp-1', m, { hidden: true, endMs: Date.now() + 3_600_000 });
    const tally = await gc(id);
    expect(tally.rows.size).toBe(0);
    expect(await manifestExists(f, m)).toBe(true);
  });

  it('keeps blobs shared with other repositories and namespaces', async () => {
    const a = await repo();
    const b = await repo();
    const shared = await blob(f);
    const own = await blob(f);
    const ma = await manifest(f, a.id, { blobs: [shared, own] });
    const mb = await manifest(f, b.id, { blobs: [shared] });
    await tag(f, a.id, 'x', ma);
    await tag(f, b.id, 'x', mb);
    await endTag(f, a.id, 'x');
    await gc(a.id);
    expect(await objectExists(f, own.digest)).toBe(false);
    expect(await objectExists(f, shared.digest)).toBe(true);
    expect(await blobRowExists(f, shared)).toBe(true);
  });

  it('never collects the empty layer, and keeps placeholder blobs without placement', async () => {
    const { id } = await repo();
    // The empty layer's row, placed but without an object (its bytes do not matter here).
    const { rows } = await f.pool.query<{ id: number }>(
      `INSERT INTO imagestorage (content_checksum, image_size) VALUES ($1, 32) RETURNING id`, [EMPTY_LAYER_DIGEST]);
    await f.pool.query(`INSERT INTO imagestorageplacement (storage_id, location_id) VALUES ($1, $2)`, [rows[0]!.id, f.locationIds.get('local_us')]);
    const emptyLayer = { id: rows[0]!.id, digest: EMPTY_LAYER_DIGEST, size: 32 };
    const placeholder = await placeholderBlob(f);
    const m = await manifest(f, id, { blobs: [emptyLayer, placeholder] });
    await tag(f, id, 'x', m, { endMs: Date.now() - 1000 });
    await gc(id);
    expect(await manifestExists(f, m)).toBe(false);
    expect(await blobRowExists(f, emptyLayer)).toBe(true);
    expect(await blobRowExists(f, placeholder)).toBe(true);
  });
});

describe('time machine', () => {
  it('collects nothing while the window lasts, everything once it passed (per namespace)', async () => {
    const day = await repo(86_400);
    const second = await repo(1);
    const now = Date.now();
    const blobs = await Promise.all([blob(f), blob(f)]);
    const mDay = await manifest(f, day.id, { blobs: [blobs[0]!] });
    const mSecond = await manifest(f, second.id, { blobs: [blobs[1]!] });
    await tag(f, day.id, 'x', mDay, { endMs: now });
    await tag(f, second.id, 'x', mSecond, { endMs: now });
    expect((await gc(day.id, now + 500)).rows.size).toBe(0);
    expect((await gc(second.id, now + 500)).rows.size).toBe(0);
    expect(await objectExists(f, blobs[1]!.digest)).toBe(true);
    expect((await gc(second.id, now + 2000)).count('Manifest')).toBe(1);
    expect(await objectExists(f, blobs[1]!.digest)).toBe(false);
    expect((await gc(day.id, now + 2000)).rows.size).toBe(0);
    expect((await gc(day.id, now + 86_401_000)).count('Manifest')).toBe(1);
  });

  it('stops collection when the tag is restored within the window', async () => {
    const { id } = await repo(60);
    const now = Date.now();
    const b = await blob(f);
    const m = await manifest(f, id, { blobs: [b] });
    await tag(f, id, 'x', m, { startMs: now - 10_000, endMs: now - 5000 });
    await tag(f, id, 'x', m, { startMs: now }); // restore: a new alive row for the same manifest
    const tally = await gc(id, now + 120_000);
    expect(tally.count('Tag')).toBe(1); // the old history row, now past the window
    expect(await manifestExists(f, m)).toBe(true);
    expect(await objectExists(f, b.digest)).toBe(true);
  });

  it('collects a permanently deleted tag at once, however long the window', async () => {
    const { id } = await repo(1_209_600);
    const now = Date.now();
    const b = await blob(f);
    const m = await manifest(f, id, { blobs: [b] });
    // PERMANENTLY_DELETE_TAGS moves the tag's end before the window (Quay's remove_tag_from_timemachine).
    await tag(f, id, 'x', m, { startMs: now - 1_300_000_000, endMs: now - 1_209_600_000 - 1 });
    expect((await gc(id, now)).count('Manifest')).toBe(1);
    expect(await objectExists(f, b.digest)).toBe(false);
  });
});

describe('upload leases', () => {
  it('never removes a blob a live lease protects, in any repository', async () => {
    const a = await repo();
    const b = await repo();
    const x = await blob(f);
    const m = await manifest(f, a.id, { blobs: [x] });
    await tag(f, a.id, 'x', m, { endMs: Date.now() - 1000 });
    await lease(f, b.id, x, new Date(Date.now() + 3_600_000));
    await gc(a.id);
    expect(await manifestExists(f, m)).toBe(false);
    expect(await objectExists(f, x.digest)).toBe(true);
  });

  it('collects expired leases and their blobs in a repository without any expired tag (Quay leak)', async () => {
    const { id } = await repo();
    const x = await blob(f);
    const y = await blob(f);
    await lease(f, id, x, new Date(Date.now() - 1000));
    await lease(f, id, y, new Date(Date.now() + 3_600_000));
    const tally = await gc(id);
    expect(tally.count('UploadedBlob')).toBe(1);
    expect(await objectExists(f, x.digest)).toBe(false);
    expect(await objectExists(f, y.digest)).toBe(true);
    expect(await count(f, 'uploadedblob', 'repository_id = $1', [id])).toBe(1);
  });

  it('does not let an expired lease elsewhere keep a blob whose manifests are gone', async () => {
    const a = await repo();
    const b = await repo();
    const x = await blob(f);
    const m = await manifest(f, a.id, { blobs: [x] });
    await tag(f, a.id, 'x', m, { endMs: Date.now() - 1000 });
    await lease(f, b.id, x, new Date(Date.now() - 1000));
    await gc(a.id);
    expect(await objectExists(f, x.digest)).toBe(false);
    expect(await count(f, 'uploadedblob', 'repository_id = $1', [b.id])).toBe(0);
  });
});

describe('manifest lists, referrers and labels', () => {
  it('keeps the children of a tagged manifest list, and collects them with it', async () => {
    const { id } = await repo();
    const blobs = await Promise.all([blob(f), blob(f), blob(f)]);
    const children = await Promise.all(blobs.map((b) => manifest(f, id, { blobs: [b] })));
    const index = await manifest(f, id, { children });
    await tag(f, id, 'multi', index);
    expect((await gc(id)).rows.size).toBe(0);
    for (const c of children) expect(await manifestExists(f, c)).toBe(true);
    await endTag(f, id, 'multi');
    const tally = await gc(id);
    expect(tally.count('Manifest')).toBe(4);
    expect(tally.count('ManifestChild')).toBe(3);
    for (const b of blobs) expect(await objectExists(f, b.digest)).toBe(false);
  });

  it('collects only the children a deleted list alone used (partial manifest-list GC)', async () => {
    const { id } = await repo();
    const [bs, b1, b2] = await Promise.all([blob(f), blob(f), blob(f)]);
    const shared = await manifest(f, id, { blobs: [bs] });
    const only1 = await manifest(f, id, { blobs: [b1] });
    const only2 = await manifest(f, id, { blobs: [b2] });
    const l1 = await manifest(f, id, { children: [shared, only1] });
    const l2 = await manifest(f, id, { children: [shared, only2] });
    await tag(f, id, 'l1', l1);
    await tag(f, id, 'l2', l2);
    await endTag(f, id, 'l1');
    await gc(id);
    expect(await manifestExists(f, only1)).toBe(false);
    expect(await manifestExists(f, shared)).toBe(true);
    expect(await manifestExists(f, only2)).toBe(true);
    expect(await objectExists(f, bs.digest)).toBe(true);
  });

  it('collects a list whose children have lower ids, whatever the batch size', async () => {
    const { id } = await repo();
    const children = [];
    for (let i = 0; i < 15; i++) children.push(await manifest(f, id, { blobs: [await blob(f)] }));
    const index = await manifest(f, id, { children });
    await tag(f, id, 'x', index, { endMs: Date.now() - 1000 });
    const tally = new GcTally();
    await runRepositoryGc(f.pool, f.storage, id, { listener: tally, batchSize: 4 });
    expect(tally.count('Manifest')).toBe(16);
  });

  it('keeps a subject while a referrer in the same repository is tagged, not for one elsewhere', async () => {
    const a = await repo();
    const b = await repo();
    const subject = await manifest(f, a.id, { blobs: [await blob(f)] });
    const otherSubject = await manifest(f, a.id, { blobs: [await blob(f)] });
    const referrer = await manifest(f, a.id, { blobs: [await blob(f)], subject: subject.digest });
    await tag(f, a.id, '$temp-ref', referrer, { hidden: true });
    const foreign = await manifest(f, b.id, { subject: otherSubject.digest });
    await tag(f, b.id, '$temp-ref', foreign, { hidden: true });
    await gc(a.id);
    expect(await manifestExists(f, subject)).toBe(true);
    expect(await manifestExists(f, referrer)).toBe(true);
    expect(await manifestExists(f, otherSubject)).toBe(false);
  });

  it('keeps a label another manifest links, deletes it with the last one', async () => {
    const { id } = await repo();
    const shared = await label(f);
    const own = await label(f);
    const m1 = await manifest(f, id, { labels: [shared, own] });
    const m2 = await manifest(f, id, { labels: [shared] });
    await tag(f, id, 'a', m1, { endMs: Date.now() - 1000 });
    const t2 = await tag(f, id, 'b', m2);
    const first = await gc(id);
    expect(first.count('Label')).toBe(1);
    expect(await count(f, 'label', 'id = $1', [shared])).toBe(1);
    await f.pool.query(`UPDATE tag SET lifetime_end_ms = $2 WHERE id = $1`, [t2, Date.now() - 1000]);
    expect((await gc(id)).count('Label')).toBe(1);
    expect(await count(f, 'label', 'id = $1', [shared])).toBe(0);
  });
});
