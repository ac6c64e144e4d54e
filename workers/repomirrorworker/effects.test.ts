/**
 * What a mirrored tag causes beyond its rows, as a push does (Quay's skopeo pushed each tag through
 * the registry): a `repo_push` notification per moved tag with the mirror's robot as performer
 * (none for a tag already in place), and quota enforced as on pushes: a tag that would take the
 * namespace over its Reject limit fails (Quay's message), the tags that fit are mirrored, and
 * nothing of the refused tag becomes visible or counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNamespace } from '../../shared/db/namespaces.ts';
import { RepoMirrorStatus } from '../../shared/db/mirrors.ts';
import { QUOTA_EXCEEDED_MESSAGE } from '../../shared/db/quota/enforcement.ts';
import { createNamespaceQuota, createQuotaLimit } from '../../shared/db/quota/definitions.ts';
import { findNamespaceQuota } from '../../shared/db/quota/limits.ts';
import { fakeImage, startFakeUpstream, type FakeUpstream } from '../../test/helpers/fake-upstream.ts';
import type { TestRegistry } from '../../test/helpers/registry.ts';
import { createMirrorRepo, localTags, makeDue, mirrorOf, startMirrorRegistry, syncNow } from './test-support.ts';

let reg: TestRegistry;
let fake: FakeUpstream;

beforeAll(async () => {
  [reg, fake] = await Promise.all([startMirrorRegistry({ FEATURE_QUOTA_MANAGEMENT: true }), startFakeUpstream('lib/app')]);
}, 240_000);

afterAll(async () => {
  await Promise.all([reg?.close(), fake?.stop()]);
});

async function pushNotifications(repositoryId: number): Promise<{ tags: string[]; performer: unknown }[]> {
  const { rows } = await reg.db.query<{ payload: { eventData: { updated_tags: string[] }; performerData: unknown } }>(
    `SELECT payload FROM outbox WHERE queue_name = 'notification' AND payload->>'event' = 'repo_push'
       AND payload->'eventData'->>'name' = (SELECT name FROM repository WHERE id = $1) ORDER BY id`, [repositoryId]);
  return rows.map((r) => ({ tags: r.payload.eventData.updated_tags, performer: r.payload.performerData }));
}

describe('repo_push notifications', () => {
  it('one per mirrored tag that moved, performed by the mirror robot; none for a tag already in place', async () => {
    fake.tags.set('a', fakeImage('push-a')).set('b', fakeImage('push-b'));
    const id = await createMirrorRepo(reg, 'notified', { external: `${fake.authority}/lib/app`, patterns: ['a', 'b'] });
    await reg.db.query(`INSERT INTO repositorynotification (repository_id, event, method) VALUES ($1, 'repo_push', 'webhook')`, [id]);
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    const robot = (await findNamespace(reg.db, 'mirrors+sync'))!;
    expect(await pushNotifications(id)).toEqual([
      { tags: ['a'], performer: { entity_id: robot.id, entity_name: 'mirrors+sync' } },
      { tags: ['b'], performer: { entity_id: robot.id, entity_name: 'mirrors+sync' } },
    ]);
    fake.tags.set('b', fakeImage('push-b2'));
    await makeDue(reg, id);
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    expect((await pushNotifications(id)).map((n) => n.tags)).toEqual([['a'], ['b'], ['b']]);
    fake.tags.clear();
  });
});

describe('quota', () => {
  it('a tag over the namespace\'s Reject limit fails as a push would; the tags that fit are mirrored', async () => {
    // A namespace of its own, so its totals start with this mirror (as for a new organization).
    await reg.createOrganization('quotaed', 'admin');
    const robot = await reg.createRobot('quotaed', 'sync');
    const small = fakeImage('fits');
    const big = fakeImage('too-much');
    const smallBytes = [...small.blobs.values()].reduce((n, b) => n + b.length, 0);
    fake.tags.set('a-fits', small).set('b-too-much', big);
    const org = (await findNamespace(reg.db, 'quotaed'))!;
    expect(await createNamespaceQuota(reg.db, org.id, smallBytes + 100)).toBe('created');
    expect(await createQuotaLimit(reg.db, (await findNamespaceQuota(reg.db, org.id))!, 'Reject', 100)).toBe('created');
    const id = await createMirrorRepo(reg, 'quotaed/app', { external: `${fake.authority}/lib/app`, patterns: ['*'], robot: robot.username });
    expect(await syncNow(reg, id)).toBe('FAIL');
    expect(await localTags(reg, id)).toEqual({ 'a-fits': small.digest });
    expect((await mirrorOf(reg, id)).sync_status).toBe(RepoMirrorStatus.FAIL);
    const { rows } = await reg.db.query<{ tag: string; stderr: string }>(
      `SELECT metadata_json->>'tag' AS tag, metadata_json->>'stderr' AS stderr FROM logentry WHERE repository_id = $1 AND kind = 'repo_mirror_sync_tag_failed'`, [id]);
    expect(rows).toEqual([{ tag: 'b-too-much', stderr: QUOTA_EXCEEDED_MESSAGE }]);
    const { rows: totals } = await reg.db.query<{ size: string }>(`SELECT size_bytes::text AS size FROM quotanamespacesize WHERE namespace_user_id = $1`, [org.id]);
    expect(Number(totals[0]?.size)).toBe(smallBytes);
    fake.tags.clear();
  });
});
