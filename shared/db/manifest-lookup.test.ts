/**
 * The pull path's lookup by digest: Quay's reachability rule (an alive tag, hidden or not, on the
 * manifest or on an index listing it), in one prepared statement whose generic plan only probes
 * indexes, on a repository with a long history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { getManifestByDigest, headManifestByDigest, listReferrers } from './manifests.ts';

let database: TestDatabase;
let repositoryId: number;
const NOW = 10_000_000;
const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;

/** Inserts manifest `n` (optionally with a subject) and returns its id. */
async function manifest(n: number, subject: string | null = null): Promise<number> {
  const { rows } = await database.pool.query<{ id: number }>(
    `INSERT INTO manifest (repository_id, digest, media_type, manifest_bytes, subject) VALUES ($1, $2, 'application/vnd.oci.image.manifest.v1+json', $3, $4) RETURNING id`,
    [repositoryId, digest(n), Buffer.from(`{"n":${n}}`), subject]);
  return rows[0]!.id;
}

async function tag(manifestId: number, name: string, endMs: number | null, hidden = false): Promise<void> {
  await database.pool.query(
    `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms, hidden) VALUES ($1, $2, $3, 0, $4, $5)`,
    [name, repositoryId, manifestId, endMs, hidden]);
}

beforeAll(async () => {
  database = await createTestDatabase('manifestlookup');
  const ns = await database.pool.query<{ id: number }>(`INSERT INTO namespace (username) VALUES ('lookupowner') RETURNING id`);
  repositoryId = (await database.pool.query<{ id: number }>(`INSERT INTO repository (namespace_user_id, name) VALUES ($1, 'r') RETURNING id`, [ns.rows[0]!.id])).rows[0]!.id;
  // A long history: 20 000 manifests, each tagged once and moved on (ended rows), a tenth still alive.
  await database.pool.query(
    `WITH m AS (
       INSERT INTO manifest (repository_id, digest, media_type, manifest_bytes)
       SELECT $1, 'sha256:' || lpad(to_hex(1000000 + g), 64, '0'), 'application/vnd.oci.image.manifest.v1+json', '\\x7b7d'::bytea
       FROM generate_series(1, 20000) g RETURNING id)
     INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms)
     SELECT CASE WHEN m.id % 10 = 0 THEN 'alive' || m.id ELSE 'h' || (m.id % 500) END, $1, m.id, m.id, CASE WHEN m.id % 10 = 0 THEN NULL ELSE 1000 + m.id END FROM m`, [repositoryId]);
  // And indexes: every tenth manifest lists the nine before it.
  await database.pool.query(
    `INSERT INTO manifestchild (repository_id, manifest_id, child_manifest_id)
     SELECT $1, p.id, p.id - k FROM manifest p, generate_series(1, 9) k
     WHERE p.repository_id = $1 AND p.id % 10 = 0 AND p.id - k >= (SELECT min(id) FROM manifest)`, [repositoryId]);
  await database.pool.query('ANALYZE manifest; ANALYZE tag; ANALYZE manifestchild');
});
afterAll(async () => database?.drop());

describe('the reachability rule', () => {
  it.each([
    ['an alive visible tag', { end: null, hidden: false }, true],
    ['an alive hidden tag (a push-by-digest lease)', { end: NOW + 1, hidden: true }, true],
    ['a hidden tag without end (a referrer)', { end: null, hidden: true }, true],
    ['a tag that ended', { end: NOW - 1, hidden: false }, false],
    ['a tag ending at this very instant', { end: NOW, hidden: false }, false],
    ['no tag at all', undefined, false],
  ] as const)('%s -> served %s', async (_name, tagged, served) => {
    const n = Math.floor(Math.random() * 1e9);
    const id = await manifest(n);
    if (tagged) await tag(id, `t${n}`, tagged.end, tagged.hidden);
    expect((await getManifestByDigest(database.pool, repositoryId, digest(n), NOW))?.id).toBe(served ? id : undefined);
    expect((await headManifestByDigest(database.pool, repositoryId, digest(n), NOW))?.id).toBe(served ? id : undefined);
  });

  it('serves a child while an index listing it has an alive tag, and not once that tag ends', async () => {
    const child = await manifest(900_001);
    const index = await manifest(900_002);
    await database.pool.query(`INSERT INTO manifestchild (repository_id, manifest_id, child_manifest_id) VALUES ($1, $2, $3)`, [repositoryId, index, child]);
    await tag(index, 'multi', NOW + 5);
    expect((await getManifestByDigest(database.pool, repositoryId, digest(900_001), NOW))?.id).toBe(child);
    expect(await getManifestByDigest(database.pool, repositoryId, digest(900_001), NOW + 5)).toBeUndefined();
  });

  it('lists only reachable referrers', async () => {
    const subject = digest(900_100);
    const kept = await manifest(900_101, subject);
    const gone = await manifest(900_102, subject);
    await tag(kept, '$temp-kept', null, true);
    await tag(gone, '$temp-gone', NOW - 1, true);
    const rows = await listReferrers(database.pool, { repositoryId, subject, nowMs: NOW, limit: 10 });
    expect(rows.map((r) => r.digest)).toEqual([digest(900_101)]);
  });
});

describe('the plan', () => {
  it('probes only indexes in the generic plan of the prepared pull-path statements', async () => {
    const client = await database.pool.connect();
    try {
      await client.query('SET plan_cache_mode = force_generic_plan');
      for (const [name, run] of [
        ['manifests.getManifestByDigest', () => getManifestByDigest(client, repositoryId, digest(1_000_010), NOW)],
        ['manifests.headManifestByDigest', () => headManifestByDigest(client, repositoryId, digest(1_000_010), NOW)],
      ] as const) {
        expect((await run())?.digest).toBe(digest(1_000_010));
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE "${name}"(${repositoryId}, '${digest(1_000_011)}', ${NOW})`);
        const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
        expect(plan, plan).not.toMatch(/Seq Scan|hashed SubPlan/);
        // Either index of (repository, digest) is an exact probe; the repository must be part of the
        // index condition, never a filter over every repository holding the digest.
        expect(plan, plan).toMatch(/Index Scan using (manifest_repository_id_digest_key|manifest_digest) on manifest/);
        expect(plan, plan).toMatch(/Index Cond: \(\((repository_id = \$1\) AND \(digest = \$2|digest = \$2\) AND \(repository_id = \$1)\)\)/);
        expect(plan, plan).toMatch(/Index (Only )?Scan using tag_manifest_end on tag/);
        expect(plan, plan).toMatch(/Index Scan using manifestchild_child on manifestchild/);
      }
    } finally {
      await client.query('RESET plan_cache_mode');
      client.release();
    }
  });
});
