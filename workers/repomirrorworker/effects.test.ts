/**
 * What a mirrored tag causes beyond its rows, as a push does (Quay's skopeo pushed each tag through
 * the registry): a `repo_push` notification per moved tag with the mirror's robot as performer
 * (none for a tag already in place), and quota enforced as on pushes: a tag that would take the
 * namespace over its Reject limit fails (Quay's message), the tags that fit are mirrored, and
 * nothing of the refused tag becomes visible or counted; tags a sync removes are collected by GC
 * when their job is due, with totals equal to a recomputation throughout; and the sync's metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry } from '../../shared/metrics/index.ts';
import { findNamespace } from '../../shared/db/namespaces.ts';
import { RepoMirrorStatus } from '../../shared/db/mirrors.ts';
import { QUOTA_EXCEEDED_MESSAGE } from '../../shared/db/quota/enforcement.ts';
import { createNamespaceQuota, createQuotaLimit } from '../../shared/db/quota/definitions.ts';
import { findNamespaceQuota } from '../../shared/db/quota/limits.ts';
import { auditQuotaTotals } from '../../shared/db/quota/audit.ts';
import { fakeImage, startFakeUpstream, type FakeUpstream } from '../../test/helpers/fake-upstream.ts';
import type { TestRegistry } from '../../test/helpers/registry.ts';
import {
  blobObjectExists, collectWhenDue, createMirrorRepo, hasManifest, localTags, makeDue, mirrorOf, startMirrorRegistry, syncNow,
} from './test-support.ts';

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
    // Nothing of the refused tag is visible: no manifest, no tag; its blobs arrived (as a push's
    // uploads would) but count nowhere, and only their leases hold them.
    expect(await hasManifest(reg, id, big.digest)).toBe(false);
    const { rows: totals } = await reg.db.query<{ size: string; complete: boolean }>(
      `SELECT size_bytes::text AS size, backfill_complete AS complete FROM quotanamespacesize WHERE namespace_user_id = $1`, [org.id]);
    expect(totals).toEqual([{ size: String(smallBytes), complete: true }]);
    expect(await auditQuotaTotals(reg.db)).toEqual([]);
    // Its blobs, leased for the push window, are collected when the lease's GC job is due.
    await collectWhenDue(reg, id);
    for (const digest of big.blobs.keys()) expect(await blobObjectExists(reg, digest), digest).toBe(false);
    for (const digest of small.blobs.keys()) expect(await blobObjectExists(reg, digest), digest).toBe(true);
    expect(await auditQuotaTotals(reg.db)).toEqual([]);
    fake.tags.clear();
  });

  it('tags the sync removes (rule changed, gone upstream) are collected by GC when due; totals equal a recomputation', async () => {
    await reg.createOrganization('pruned', 'admin');
    const robot = await reg.createRobot('pruned', 'sync');
    const images = { a: fakeImage('pruned-a'), b: fakeImage('pruned-b'), c: fakeImage('pruned-c') };
    for (const [tag, image] of Object.entries(images)) fake.tags.set(tag, image);
    const org = (await findNamespace(reg.db, 'pruned'))!;
    expect(await createNamespaceQuota(reg.db, org.id, 1024 * 1024)).toBe('created');
    const id = await createMirrorRepo(reg, 'pruned/app', { external: `${fake.authority}/lib/app`, patterns: ['*'], robot: robot.username });
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    expect(await auditQuotaTotals(reg.db)).toEqual([]);
    // b no longer selected, c gone upstream.
    await reg.db.query(`UPDATE repomirrorrule SET rule_value = '["a", "c"]' WHERE repository_id = $1`, [id]);
    fake.tags.delete('c');
    await makeDue(reg, id);
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    expect(await localTags(reg, id)).toEqual({ a: images.a.digest });
    const { rows } = await reg.db.query<{ tag: string }>(
      `SELECT metadata_json->>'tag' AS tag FROM logentry WHERE repository_id = $1 AND kind = 'delete_tag' ORDER BY id`, [id]);
    expect(rows.map((r) => r.tag)).toEqual(['b', 'c']);
    await collectWhenDue(reg, id);
    for (const image of [images.b, images.c]) {
      expect(await hasManifest(reg, id, image.digest)).toBe(false);
      for (const digest of image.blobs.keys()) expect(await blobObjectExists(reg, digest), digest).toBe(false);
    }
    expect(await hasManifest(reg, id, images.a.digest)).toBe(true);
    for (const digest of images.a.blobs.keys()) expect(await blobObjectExists(reg, digest), digest).toBe(true);
    const aBytes = [...images.a.blobs.values()].reduce((n, b) => n + b.length, 0);
    const { rows: totals } = await reg.db.query<{ size: string }>(`SELECT size_bytes::text AS size FROM quotanamespacesize WHERE namespace_user_id = $1`, [org.id]);
    expect(totals).toEqual([{ size: String(aBytes) }]);
    expect(await auditQuotaTotals(reg.db)).toEqual([]);
    fake.tags.clear();
  });
});

async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const values = (await metric.get()).values.filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want));
  return values.reduce((sum, v) => sum + v.value, 0);
}

describe('metrics', () => {
  it('syncs by outcome, tags and bytes copied, blobs skipped, last success per mirror, lag, syncs in flight', async () => {
    const images = { m1: fakeImage('metrics-1'), m2: fakeImage('metrics-2'), m3: fakeImage('metrics-3', { corrupt: true }) };
    for (const [tag, image] of Object.entries(images)) fake.tags.set(tag, image);
    const bytes = (image: { blobs: Map<string, Buffer> }): number => [...image.blobs.values()].reduce((n, b) => n + b.length, 0);
    const before = {
      success: await metricValue('quayfleet_repository_mirror_syncs_total', { outcome: 'success' }),
      fail: await metricValue('quayfleet_repository_mirror_syncs_total', { outcome: 'fail' }),
      tags: await metricValue('quayfleet_repository_mirror_tags_copied_total'),
      bytes: await metricValue('quayfleet_repository_mirror_bytes_copied_total'),
      skipped: await metricValue('quayfleet_repository_mirror_blobs_skipped_total'),
    };
    const labels = { namespace: 'mirrors', repository: 'metered' };
    const id = await createMirrorRepo(reg, 'metered', { external: `${fake.authority}/lib/app`, patterns: ['m1', 'm2'] });
    const startedS = Date.now() / 1000;
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    expect(await metricValue('quayfleet_repository_mirror_syncs_total', { outcome: 'success' })).toBe(before.success + 1);
    expect(await metricValue('quayfleet_repository_mirror_tags_copied_total')).toBe(before.tags + 2);
    expect(await metricValue('quayfleet_repository_mirror_bytes_copied_total')).toBe(before.bytes + bytes(images.m1) + bytes(images.m2));
    expect(await metricValue('quayfleet_repository_mirror_last_success_timestamp_seconds', labels)).toBeGreaterThanOrEqual(Math.floor(startedS));
    expect(await metricValue('quayfleet_repository_mirror_lag_tags', labels)).toBe(0);
    expect(await metricValue('quay_repository_mirror_workers_active')).toBe(0);
    // A second mirror of the same upstream: every blob skipped, no byte copied.
    const copy = await createMirrorRepo(reg, 'metered-copy', { external: `${fake.authority}/lib/app`, patterns: ['m1', 'm2'] });
    expect(await syncNow(reg, copy)).toBe('SUCCESS');
    expect(await metricValue('quayfleet_repository_mirror_blobs_skipped_total')).toBe(before.skipped + 4);
    expect(await metricValue('quayfleet_repository_mirror_bytes_copied_total')).toBe(before.bytes + bytes(images.m1) + bytes(images.m2));
    // A tag that fails stays in the lag.
    await reg.db.query(`UPDATE repomirrorrule SET rule_value = '["m1", "m2", "m3"]' WHERE repository_id = $1`, [id]);
    await makeDue(reg, id);
    const inFlight: number[] = [];
    const hold = fake.holdNext('manifests/m3');
    const running = syncNow(reg, id);
    await hold.reached;
    inFlight.push(await metricValue('quay_repository_mirror_workers_active'));
    hold.release();
    expect(await running).toBe('FAIL');
    expect(inFlight).toEqual([1]);
    expect(await metricValue('quayfleet_repository_mirror_syncs_total', { outcome: 'fail' })).toBe(before.fail + 1);
    expect(await metricValue('quayfleet_repository_mirror_lag_tags', labels)).toBe(1);
    expect(await metricValue('quay_repository_mirror_workers_active')).toBe(0);
    fake.tags.clear();
  });
});
