import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { insertManifest } from './manifests.ts';
import { withTransaction } from './pool.ts';
import { endManifestTags, endTag, getTaggedManifest, headTaggedManifest, keepManifestAlive, listTagNames, setTag, TagImmutableError } from './tags.ts';

let database: TestDatabase;
let repositoryId: number;
const manifests: number[] = [];

beforeAll(async () => {
  database = await createTestDatabase('tags');
  const db = database.pool;
  const ns = await db.query<{ id: number }>(`INSERT INTO namespace (username) VALUES ('tagowner') RETURNING id`);
  repositoryId = (await db.query<{ id: number }>(`INSERT INTO repository (namespace_user_id, name) VALUES ($1, 'r') RETURNING id`, [ns.rows[0]!.id])).rows[0]!.id;
  for (const n of [1, 2, 3]) {
    manifests.push((await insertManifest(db, {
      repositoryId, digest: `sha256:${String(n).repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes: Buffer.from(`{"n":${n}}`),
      configMediaType: null, artifactType: null, subject: null, layersCompressedSize: 0,
    })).id);
  }
});
afterAll(async () => database?.drop());

const tx = <T>(fn: (t: Parameters<Parameters<typeof withTransaction>[1]>[0]) => Promise<T>) => withTransaction(database.pool, fn);

describe('tags with lifetimes', () => {
  it('moves a tag by ending its alive row and starting a new one, and leaves an unchanged tag alone', async () => {
    const now = 1_000_000;
    expect(await tx((t) => setTag(t, { repositoryId, name: 'moving', manifestId: manifests[0]!, nowMs: now }))).toEqual({ unchanged: false, ended: [] });
    expect((await tx((t) => setTag(t, { repositoryId, name: 'moving', manifestId: manifests[0]!, nowMs: now + 1 }))).unchanged).toBe(true);
    const moved = await tx((t) => setTag(t, { repositoryId, name: 'moving', manifestId: manifests[1]!, nowMs: now + 2 }));
    expect(moved.ended.map((e) => [e.manifest_id, e.lifetime_end_ms])).toEqual([[manifests[0], now + 2]]);
    expect((await getTaggedManifest(database.pool, repositoryId, 'moving', now + 3))?.id).toBe(manifests[1]);
  });

  it('gives two moves in one millisecond distinct ends', async () => {
    const now = 2_000_000;
    await tx((t) => setTag(t, { repositoryId, name: 'fast', manifestId: manifests[0]!, nowMs: now }));
    const a = await tx((t) => setTag(t, { repositoryId, name: 'fast', manifestId: manifests[1]!, nowMs: now }));
    const b = await tx((t) => setTag(t, { repositoryId, name: 'fast', manifestId: manifests[2]!, nowMs: now }));
    expect(a.ended[0]!.lifetime_end_ms).not.toBe(b.ended[0]!.lifetime_end_ms);
    expect((await getTaggedManifest(database.pool, repositoryId, 'fast', now + 10))?.id).toBe(manifests[2]);
  });

  it('finds a tag alive until a future end, not after it, and skips a long history quickly', async () => {
    await database.pool.query(
      `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms) SELECT 'busy', $1, $2, g, g + 1 FROM generate_series(1, 5000) g`,
      [repositoryId, manifests[0]]);
    await database.pool.query(`INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms) VALUES ('busy', $1, $2, 10000, 20000)`, [repositoryId, manifests[1]]);
    for (let i = 0; i < 7; i++) expect((await getTaggedManifest(database.pool, repositoryId, 'busy', 15000))?.id).toBe(manifests[1]);
    expect((await headTaggedManifest(database.pool, repositoryId, 'busy', 15000))?.size).toBe(7);
    expect(await getTaggedManifest(database.pool, repositoryId, 'busy', 20000)).toBeUndefined();
  });

  it('keeps a manifest alive with a hidden tag only when no tag already does', async () => {
    const now = 3_000_000;
    expect(await tx((t) => keepManifestAlive(t, { repositoryId, manifestId: manifests[2]!, nowMs: now, endMs: now + 1000 }))).toBeUndefined(); // 'fast' holds it
    expect(await tx((t) => keepManifestAlive(t, { repositoryId, manifestId: manifests[0]!, nowMs: now, endMs: null }))).toEqual({ endMs: null });
    expect((await listTagNames(database.pool, { repositoryId, nowMs: now, limit: 100 })).some((n) => n.startsWith('$'))).toBe(false);
  });

  it('ends a tag, or every tag of a manifest, and refuses immutable ones', async () => {
    const now = 4_000_000;
    await tx((t) => setTag(t, { repositoryId, name: 'gone', manifestId: manifests[1]!, nowMs: now }));
    expect((await tx((t) => endTag(t, { repositoryId, name: 'gone', nowMs: now + 1 }))).map((e) => e.name)).toEqual(['gone']);
    expect(await tx((t) => endTag(t, { repositoryId, name: 'gone', nowMs: now + 2 }))).toEqual([]);
    const ended = await tx((t) => endManifestTags(t, { repositoryId, manifestId: manifests[0]!, nowMs: now + 3 }));
    expect(ended.some((e) => e.hidden)).toBe(true);
    await tx((t) => setTag(t, { repositoryId, name: 'locked', manifestId: manifests[1]!, nowMs: now + 4 }));
    await database.pool.query(`UPDATE tag SET immutable = true WHERE name = 'locked'`);
    await expect(tx((t) => endTag(t, { repositoryId, name: 'locked', nowMs: now + 5 }))).rejects.toBeInstanceOf(TagImmutableError);
    await expect(tx((t) => setTag(t, { repositoryId, name: 'locked', manifestId: manifests[2]!, nowMs: now + 5 }))).rejects.toBeInstanceOf(TagImmutableError);
  });
});
