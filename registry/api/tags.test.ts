import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '../../shared/db/pool.ts';
import { findRepository, RepositoryState, type RepositoryRow } from '../../shared/db/repositories.ts';
import { setTag } from '../../shared/db/tags.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const PASSWORD = 'a long enough password';
const alice: [string, string] = ['alice', PASSWORD];
const WEEK_S = 7 * 86_400;
const TWO_WEEKS_S = 2 * WEEK_S;
let clock = Date.UTC(2025, 0, 1);

async function addManifest(t: TestRegistry, repo: RepositoryRow, body: string): Promise<{ id: number; digest: string }> {
  const bytes = Buffer.from(body);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const { rows } = await t.db.query<{ id: number }>(
    `INSERT INTO manifest (repository_id, digest, media_type, manifest_bytes, layers_compressed_size)
     VALUES ($1, $2, 'application/vnd.oci.image.manifest.v1+json', $3, 1234) RETURNING id`, [repo.id, digest, bytes]);
  return { id: rows[0]!.id, digest };
}

async function tag(t: TestRegistry, repo: RepositoryRow, name: string, manifestId: number): Promise<void> {
  await withTransaction(t.db, (tx) => setTag(tx, { repositoryId: repo.id, name, manifestId, nowMs: clock }));
}

async function setup(config: Record<string, unknown> = {}) {
  const t = await startTestRegistry({ label: 'apitags', now: () => clock, config });
  await t.createUser('alice', PASSWORD);
  await t.createUser('reader', PASSWORD);
  const repo = await t.createRepository('alice/app');
  await t.grant('alice/app', { user: 'reader' }, 'read');
  const a = await addManifest(t, repo, '{"a":1}');
  const b = await addManifest(t, repo, '{"b":2}');
  await tag(t, repo, 'latest', a.id);
  clock += 1000;
  await tag(t, repo, 'latest', b.id);
  await tag(t, repo, 'stable', a.id);
  clock += 1000;
  return { t, repo, a, b };
}

describe('tag history, delete, restore', () => {
  let t: TestRegistry;
  let repo: RepositoryRow;
  let a: { id: number; digest: string };
  let b: { id: number; digest: string };
  beforeAll(async () => ({ t, repo, a, b } = await setup()));
  afterAll(async () => t?.close());

  it('lists history with ended rows, in Quay shape', async () => {
    const response = await t.api('GET', '/repository/alice/app/tag/', { as: alice });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ page: 1, has_additional: false });
    expect(body.tags.map((x: { name: string }) => x.name)).toEqual(['stable', 'latest', 'latest']);
    const ended = body.tags.find((x: { end_ts?: number }) => x.end_ts !== undefined);
    expect(ended).toMatchObject({ name: 'latest', manifest_digest: a.digest, reversion: false, is_manifest_list: false, size: 1234 });
    expect(ended.expiration).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} -0000$/);
    const active = await t.api('GET', '/repository/alice/app/tag/?onlyActiveTags=true&specificTag=latest', { as: alice });
    expect(active.json().tags).toEqual([expect.objectContaining({ name: 'latest', manifest_digest: b.digest })]);
    expect(active.json().tags[0]).not.toHaveProperty('end_ts');
    const paged = await t.api('GET', '/repository/alice/app/tag/?limit=1&page=2', { as: alice });
    expect(paged.json()).toMatchObject({ page: 2, has_additional: true, tags: [expect.objectContaining({ name: 'latest' })] });
  });

  it('refuses bad list input and unauthorized callers', async () => {
    expect((await t.api('GET', '/repository/alice/app/tag/?limit=abc', { as: alice })).statusCode).toBe(400);
    expect((await t.api('GET', '/repository/alice/app/tag/')).statusCode).toBe(401);
    expect((await t.api('GET', '/repository/alice/nothing/tag/', { as: alice })).statusCode).toBe(404);
  });

  it('deletes a tag: ends it now, logs delete_tag, schedules GC when it leaves the time machine', async () => {
    expect((await t.api('DELETE', '/repository/alice/app/tag/stable', { as: ['reader', PASSWORD] })).statusCode).toBe(403);
    const response = await t.api('DELETE', '/repository/alice/app/tag/stable', { as: alice });
    expect(response.statusCode).toBe(204);
    const { rows: [row] } = await t.db.query(`SELECT lifetime_end_ms FROM tag WHERE repository_id = $1 AND name = 'stable'`, [repo.id]);
    expect(row.lifetime_end_ms).toBe(clock);
    const { rows: [log] } = await t.db.query(`SELECT metadata_json FROM logentry WHERE kind = 'delete_tag'`);
    expect(log.metadata_json).toEqual({ username: 'alice', repo: 'app', namespace: 'alice', tag: 'stable' });
    const dueAtS = Math.ceil(clock / 1000) + TWO_WEEKS_S;
    const { rows: outbox } = await t.db.query(`SELECT job_id, payload, run_at FROM outbox WHERE queue_name = 'garbagecollection'`);
    expect(outbox).toEqual([{
      job_id: `garbagecollection/${repo.id}/${dueAtS}`, run_at: new Date(dueAtS * 1000),
      payload: { v: 1, reason: 'tag_expired', repositoryId: repo.id, dueAtS, namespace: 'alice', repository: 'app' },
    }]);
    expect((await t.api('DELETE', '/repository/alice/app/tag/stable', { as: alice })).statusCode).toBe(404);
    expect((await t.api('DELETE', '/repository/alice/app/tag/in*valid', { as: alice })).statusCode).toBe(400);
  });

  it('restores a tag within the time machine, as a reversion', async () => {
    clock += 1000;
    const response = await t.api('POST', '/repository/alice/app/tag/latest/restore', { as: alice, body: { manifest_digest: a.digest } });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({});
    const active = await t.api('GET', '/repository/alice/app/tag/?onlyActiveTags=true&specificTag=latest', { as: alice });
    expect(active.json().tags).toEqual([expect.objectContaining({ manifest_digest: a.digest, reversion: true })]);
    const { rows } = await t.db.query(`SELECT metadata_json FROM logentry WHERE kind = 'revert_tag'`);
    expect(rows[0].metadata_json).toMatchObject({ tag: 'latest', manifest_digest: a.digest });
  });

  it('refuses restore without a digest, of an unknown digest, and outside the window', async () => {
    expect((await t.api('POST', '/repository/alice/app/tag/latest/restore', { as: alice, body: {} })).json().error_message).toContain('Missing manifest_digest');
    expect((await t.api('POST', '/repository/alice/app/tag/latest/restore', { as: alice })).statusCode).toBe(400);
    expect((await t.api('POST', '/repository/alice/app/tag/latest/restore', { as: alice, body: { manifest_digest: 'sha256:' + '0'.repeat(64) } })).statusCode).toBe(404);
    // b's only tag row ended when latest was restored to a; a zero window puts it out of reach.
    await t.db.query(`UPDATE namespace SET removed_tag_expiration_s = 0 WHERE username = 'alice'`);
    clock += 1000;
    expect((await t.api('POST', '/repository/alice/app/tag/latest/restore', { as: alice, body: { manifest_digest: b.digest } })).statusCode).toBe(404);
    await t.db.query(`UPDATE namespace SET removed_tag_expiration_s = $1 WHERE username = 'alice'`, [TWO_WEEKS_S]);
  });

  it('hides the permanent delete when PERMANENTLY_DELETE_TAGS is off', async () => {
    expect((await t.api('POST', '/repository/alice/app/tag/latest/expire', { as: alice, body: { is_alive: true } })).statusCode).toBe(404);
    expect((await t.api('DELETE', '/repository/alice/app/tag/latest?skipRecoveryPeriod=true', { as: alice })).statusCode).toBe(404);
  });

  it('refuses tag changes in a READ_ONLY repository with 503', async () => {
    await t.db.query(`UPDATE repository SET state = $2 WHERE id = $1`, [repo.id, RepositoryState.READ_ONLY]);
    const response = await t.api('DELETE', '/repository/alice/app/tag/latest', { as: alice });
    expect(response.statusCode).toBe(503);
    expect(response.json().error_message).toContain('Repository is in read only or mirror mode');
    await t.db.query(`UPDATE repository SET state = $2 WHERE id = $1`, [repo.id, RepositoryState.NORMAL]);
  });
});

describe('permanent delete (PERMANENTLY_DELETE_TAGS)', () => {
  let t: TestRegistry;
  let repo: RepositoryRow;
  let a: { id: number; digest: string };
  beforeAll(async () => ({ t, repo, a } = await setup({ PERMANENTLY_DELETE_TAGS: true })));
  afterAll(async () => t?.close());

  async function endOf(name: string, manifestId: number): Promise<number[]> {
    const { rows } = await t.db.query(`SELECT lifetime_end_ms FROM tag WHERE repository_id = $1 AND name = $2 AND manifest_id = $3`, [repo.id, name, manifestId]);
    return rows.map((r) => r.lifetime_end_ms);
  }

  it('expires the alive tag out of the time machine and schedules GC now', async () => {
    const response = await t.api('POST', '/repository/alice/app/tag/stable/expire', { as: alice, body: { is_alive: true } });
    expect(response.statusCode).toBe(200);
    const [end] = await endOf('stable', a.id);
    expect(end).toBeLessThanOrEqual(clock - TWO_WEEKS_S * 1000);
    const { rows } = await t.db.query(`SELECT payload FROM outbox WHERE queue_name = 'garbagecollection'`);
    expect(rows.map((r) => r.payload.dueAtS)).toEqual([Math.floor(clock / 1000)]);
    const { rows: logs } = await t.db.query(`SELECT metadata_json FROM logentry WHERE kind = 'permanently_delete_tag'`);
    expect(logs[0].metadata_json).toMatchObject({ tag: 'stable', manifest_digest: a.digest });
  });

  it('expires ended history by digest, and validates its body', async () => {
    expect((await t.api('POST', '/repository/alice/app/tag/latest/expire', { as: alice, body: {} })).json().error_message).toBe('manifest_digest required when is_alive set to false');
    expect((await t.api('POST', '/repository/alice/app/tag/latest/expire', { as: alice, body: { is_alive: 'yes' } })).statusCode).toBe(400);
    const response = await t.api('POST', '/repository/alice/app/tag/latest/expire', { as: alice, body: { manifest_digest: a.digest } });
    expect(response.statusCode).toBe(200);
    expect((await endOf('latest', a.id))[0]).toBeLessThanOrEqual(clock - TWO_WEEKS_S * 1000);
    expect((await t.api('POST', '/repository/alice/app/tag/latest/expire', { as: alice, body: { manifest_digest: a.digest } })).statusCode).toBe(404);
  });

  it('DELETE ?skipRecoveryPeriod=true skips the time machine', async () => {
    const response = await t.api('DELETE', '/repository/alice/app/tag/latest?skipRecoveryPeriod=true', { as: alice });
    expect(response.statusCode).toBe(204);
    const { rows } = await t.db.query(`SELECT lifetime_end_ms FROM tag WHERE repository_id = $1 AND name = 'latest' AND lifetime_end_ms > $2`, [repo.id, clock - TWO_WEEKS_S * 1000]);
    expect(rows).toEqual([]);
    expect(await findRepository(t.db, 'alice', 'app')).toBeDefined();
  });
});

describe('child manifests of a deleted index (RESET_CHILD_MANIFEST_EXPIRATION, include_submanifests)', () => {
  let t: TestRegistry;
  let repo: RepositoryRow;
  beforeAll(async () => ({ t, repo } = await setup({ PERMANENTLY_DELETE_TAGS: true, RESET_CHILD_MANIFEST_EXPIRATION: true })));
  afterAll(async () => t?.close());

  /** An index tagged `name` with two children, each kept alive by a `$temp-` tag ending an hour from now. */
  async function indexWithChildren(name: string): Promise<{ children: number[]; early: number }> {
    const index = await addManifest(t, repo, `{"index":"${name}"}`);
    const children = [await addManifest(t, repo, `{"child":"${name}-1"}`), await addManifest(t, repo, `{"child":"${name}-2"}`)].map((m) => m.id);
    for (const child of children) {
      await t.db.query(`INSERT INTO manifestchild (repository_id, manifest_id, child_manifest_id) VALUES ($1, $2, $3)`, [repo.id, index.id, child]);
      await t.db.query(`INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms, hidden) VALUES ($1, $2, $3, $4, $5, true)`,
        [`$temp-${name}-${child}`, repo.id, child, clock, clock + 3_600_000]);
    }
    // A temp tag that already ends earlier than any reset: a reset never lengthens a life.
    const early = clock - 5000;
    await t.db.query(`INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms, hidden) VALUES ($1, $2, $3, $4, $5, true)`,
      [`$temp-${name}-early`, repo.id, children[0], clock - 10_000, early]);
    await tag(t, repo, name, index.id);
    clock += 1000;
    return { children, early };
  }

  async function tempEnds(children: number[]): Promise<number[]> {
    const { rows } = await t.db.query(`SELECT lifetime_end_ms FROM tag WHERE repository_id = $1 AND hidden AND manifest_id = ANY($2::bigint[]) ORDER BY lifetime_end_ms`, [repo.id, children]);
    return rows.map((r) => Number(r.lifetime_end_ms));
  }

  it('a tag delete ends the children\'s temp tags with the index, never later than they already end', async () => {
    const { children, early } = await indexWithChildren('multi');
    expect((await t.api('DELETE', '/repository/alice/app/tag/multi', { as: alice })).statusCode).toBe(204);
    expect(await tempEnds(children)).toEqual([early, clock, clock]);
  });

  it('a registry DELETE of the tag does the same', async () => {
    const { children, early } = await indexWithChildren('multi2');
    const token = await t.tokenFor(...alice, ['repository:alice/app:*']);
    const response = await t.app.inject({ method: 'DELETE', url: '/v2/alice/app/manifests/multi2', headers: { authorization: `Bearer ${token}` } });
    expect(response.statusCode).toBe(202);
    expect(await tempEnds(children)).toEqual([early, clock, clock]);
  });

  it('a permanent delete moves the children\'s temp tags out of the time machine too', async () => {
    const { children } = await indexWithChildren('multi3');
    expect((await t.api('POST', '/repository/alice/app/tag/multi3/expire', { as: alice, body: { is_alive: true, include_submanifests: true } })).statusCode).toBe(200);
    // All three, the early one included: it ended inside the window, so GC would still wait for it.
    const ends = await tempEnds(children);
    expect(ends).toHaveLength(3);
    for (const end of ends) expect(end).toBeLessThan(clock - TWO_WEEKS_S * 1000);
  });
});
