/**
 * A push reusing a manifest row while GC collects it. Quay's push fails when GC deletes the row
 * between the lookup and the tag insert; here the push either holds the row (GC skips it) or waits
 * for GC's commit and creates the row anew. Both orders are forced with two connections.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, holdingTransaction, type TestDatabase } from '../../test/helpers/db.ts';
import { deleteUnusedManifests } from './gc/manifests.ts';
import { GcTally } from './gc/tally.ts';
import { insertManifest, type NewManifest } from './manifests.ts';
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
