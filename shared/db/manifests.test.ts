/**
 * A push reusing a manifest row while GC collects it. Quay's push fails when GC deletes the row
 * between the lookup and the tag insert; here the push either holds the row (GC skips it) or waits
 * for GC's commit and creates the row anew. Both orders are forced with two connections. The blob
 * rows and child manifests a push links are held the same way (FOR KEY SHARE until commit).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, holdingTransaction, type TestDatabase } from '../../test/helpers/db.ts';
import { deleteUnusedManifests } from './gc/manifests.ts';
import { GcTally } from './gc/tally.ts';
import { findRepositoryBlobs } from './blobs.ts';
import { collectOrphanBlobs } from './gc/blobs.ts';
import { findManifestIds, insertManifest, linkManifestBlobs, type NewManifest } from './manifests.ts';
import { withTransaction } from './pool.ts';

let database: TestDatabase;
let repository: { id: number; namespaceId: number };

beforeAll(async () => {
  database = await createTestDatabase('manifestrace');
  const ns = await database.pool.query<{ id: number }>(`INSERT INTO namespace (username) VALUES ('raceowner') RETURNING id`);
  const repo = await database.pool.query<{ id: number }>(`INSERT INTO repository (namespace_user_id, name) VALUES ($1, 'r') RETURNING id`, [ns.rows[0]!.id]);
  repository = { id: repo.rows[0]!.id, namespaceId: ns.rows[0]!.id };
});
afterAll(async () => database?.drop());

const manifest = (n: number): NewManifest => ({
  repositoryId: repository.id, digest: `sha256:${String(n).repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json',
  bytes: Buffer.from(`{"n":${n}}`), configMediaType: null, artifactType: null, subject: null, layersCompressedSize: 0,
});

describe('a push reusing a manifest GC is collecting', () => {
  it('waits for a GC that locked the row first, then creates the manifest anew', async () => {
    const m = manifest(1);
    const existing = await insertManifest(database.pool, m);
    await holdingTransaction(database.pool, async (gc) => {
      await gc.query(`SELECT id FROM manifest WHERE id = $1 FOR UPDATE`, [existing.id]);
      let settled = false;
      const push = withTransaction(database.pool, async (tx) => {
        const row = await insertManifest(tx, m);
        // What the push does next with the id: a tag pointing at it (its FK needs the row).
        await tx.query(`INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms) VALUES ('latest', $1, $2, 0)`, [repository.id, row.id]);
        return row;
      }).finally(() => { settled = true; });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(settled).toBe(false);
      await gc.query(`DELETE FROM manifest WHERE id = $1`, [existing.id]);
      await gc.query('COMMIT');
      const pushed = await push;
      expect(pushed.created).toBe(true);
      expect(pushed.id).not.toBe(existing.id);
    });
  });

  it('holds a row it reuses, so GC leaves it busy until the push commits', async () => {
    const m = manifest(2);
    const existing = await insertManifest(database.pool, m);
    await holdingTransaction(database.pool, async (pusher) => {
      expect(await insertManifest(pusher, m)).toEqual({ id: existing.id, created: false });
      const collected = await withTransaction(database.pool, (tx) => deleteUnusedManifests(tx, repository, [existing.id], { counts: new GcTally() }));
      expect(collected).toMatchObject({ deleted: [], busy: 1 });
      await pusher.query(`INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms) VALUES ('two', $1, $2, 0)`, [repository.id, existing.id]);
      await pusher.query('COMMIT');
    });
    const after = await withTransaction(database.pool, (tx) => deleteUnusedManifests(tx, repository, [existing.id], { counts: new GcTally() }));
    expect(after).toMatchObject({ deleted: [], busy: 0 });
  });
});

describe('a push reusing the blob and child manifest rows it links', () => {
  it('holds a blob row it links, so GC leaves it busy even once its lease has expired', async () => {
    const leaseEndMs = Date.now() + 60_000;
    const { rows: [blob] } = await database.pool.query<{ id: number }>(
      `INSERT INTO imagestorage (content_checksum, image_size) VALUES ($1, 3) RETURNING id`, [`sha256:${'b'.repeat(64)}`]);
    const { rows: [location] } = await database.pool.query<{ id: number }>(`INSERT INTO imagestoragelocation (name) VALUES ('held') RETURNING id`);
    await database.pool.query(`INSERT INTO imagestorageplacement (storage_id, location_id) VALUES ($1, $2)`, [blob!.id, location!.id]);
    await database.pool.query(`INSERT INTO uploadedblob (repository_id, blob_id, expires_at) VALUES ($1, $2, $3)`, [repository.id, blob!.id, new Date(leaseEndMs)]);
    const gcAfterLease = () => withTransaction(database.pool, (tx) => collectOrphanBlobs(tx, [blob!.id], { nowMs: leaseEndMs + 1000, counts: new GcTally() }));
    await holdingTransaction(database.pool, async (pusher) => {
      // The push resolves the blob while its lease lives, then GC runs after the lease's end.
      const found = await findRepositoryBlobs(pusher, repository.id, [`sha256:${'b'.repeat(64)}`], new Date(leaseEndMs - 1000), { forKeyShare: true });
      expect([...found.values()].map((b) => b.id)).toEqual([blob!.id]);
      expect(await gcAfterLease()).toEqual({ pendingIds: [], busyIds: [blob!.id] });
      const m = await insertManifest(pusher, manifest(3));
      await linkManifestBlobs(pusher, repository.id, m.id, [blob!.id]);
      await pusher.query('COMMIT');
    });
    expect(await gcAfterLease()).toEqual({ pendingIds: [], busyIds: [] });
    expect((await database.pool.query(`SELECT 1 FROM imagestorage WHERE id = $1`, [blob!.id])).rowCount).toBe(1);
  });

  /** A placed blob of digest `c` x 64 whose only link to the repository is a lease that ended a minute ago. */
  async function blobWithExpiredLease(c: string): Promise<{ id: number; digest: string }> {
    const digest = `sha256:${c.repeat(64)}`;
    const { rows: [blob] } = await database.pool.query<{ id: number }>(
      `INSERT INTO imagestorage (content_checksum, image_size) VALUES ($1, 3) RETURNING id`, [digest]);
    const { rows: [location] } = await database.pool.query<{ id: number }>(
      `INSERT INTO imagestoragelocation (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id`, ['held']);
    await database.pool.query(`INSERT INTO imagestorageplacement (storage_id, location_id) VALUES ($1, $2)`, [blob!.id, location!.id]);
    await database.pool.query(`INSERT INTO uploadedblob (repository_id, blob_id, expires_at) VALUES ($1, $2, now() - interval '1 minute')`, [repository.id, blob!.id]);
    return { id: blob!.id, digest };
  }

  it('links a blob whose lease expired before GC removed it, and GC then keeps the blob', async () => {
    const blob = await blobWithExpiredLease('c');
    const gc = () => withTransaction(database.pool, (tx) => collectOrphanBlobs(tx, [blob.id], { nowMs: Date.now(), counts: new GcTally() }));
    await holdingTransaction(database.pool, async (pusher) => {
      const found = await findRepositoryBlobs(pusher, repository.id, [blob.digest], new Date(), { forKeyShare: true });
      expect([...found.values()].map((b) => b.id)).toEqual([blob.id]);
      expect(await gc()).toEqual({ pendingIds: [], busyIds: [blob.id] });
      const m = await insertManifest(pusher, manifest(5));
      await linkManifestBlobs(pusher, repository.id, m.id, [blob.id]);
      await pusher.query('COMMIT');
    });
    expect(await gc()).toEqual({ pendingIds: [], busyIds: [] });
    expect((await database.pool.query(`SELECT 1 FROM imagestorage WHERE id = $1`, [blob.id])).rowCount).toBe(1);
    // Pulls and HEADs still go by live links only: the manifest link now, not the expired lease.
    expect((await findRepositoryBlobs(database.pool, repository.id, [blob.digest], new Date())).size).toBe(1);
  });

  it('waits for a GC that is collecting the blob of an expired lease, then finds it gone', async () => {
    const blob = await blobWithExpiredLease('d');
    await holdingTransaction(database.pool, async (gc) => {
      const collected = await collectOrphanBlobs(gc, [blob.id], { nowMs: Date.now(), counts: new GcTally() });
      expect(collected.pendingIds).toHaveLength(1);
      let settled = false;
      const push = withTransaction(database.pool, (tx) => findRepositoryBlobs(tx, repository.id, [blob.digest], new Date(), { forKeyShare: true }))
        .finally(() => { settled = true; });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(settled).toBe(false); // the push waits for GC's row lock
      await gc.query('COMMIT');
      expect((await push).size).toBe(0); // -> MANIFEST_BLOB_UNKNOWN
    });
  });

  it('does not serve a blob by its expired lease to pulls (only a push may link it)', async () => {
    const blob = await blobWithExpiredLease('e');
    expect((await findRepositoryBlobs(database.pool, repository.id, [blob.digest], new Date())).size).toBe(0);
    expect((await findRepositoryBlobs(database.pool, repository.id, [blob.digest], new Date(), { forKeyShare: true })).size).toBe(1);
  });

  it('holds an untagged child manifest an index push links, so GC leaves it busy', async () => {
    const child = await insertManifest(database.pool, manifest(4));
    await holdingTransaction(database.pool, async (pusher) => {
      expect(await findManifestIds(pusher, repository.id, [manifest(4).digest], { forKeyShare: true })).toEqual(new Map([[manifest(4).digest, child.id]]));
      const collected = await withTransaction(database.pool, (tx) => deleteUnusedManifests(tx, repository, [child.id], { counts: new GcTally() }));
      expect(collected).toMatchObject({ deleted: [], busy: 1 });
    });
  });
});
