/**
 * How syncs fail and recover: an unreachable upstream (Quay's retry countdown, one failed
 * notification per sync), Basic auth against distribution with htpasswd (right and wrong
 * credentials), a blob whose bytes do not match its digest (nothing half-visible), 503 with
 * Retry-After, cancel and a config edit mid-sync, an expired lease reclaimed (the stuck-SYNCING
 * bug), two syncs of one repository at once, and rollback on and off.
 */
import fs from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimMirror, findDueMirrors, RepoMirrorStatus, requestSyncNow, updateMirror } from '../../shared/db/mirrors.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { startDistribution, HTPASSWD_USER, type Distribution } from '../../test/helpers/distribution.ts';
import { fakeImage, startFakeUpstream, type FakeUpstream } from '../../test/helpers/fake-upstream.ts';
import type { TestRegistry } from '../../test/helpers/registry.ts';
import { startTcpProxy } from '../../test/helpers/tcp-proxy.ts';
import {
  blobObjectExists, buildLayout, collectWhenDue, createMirrorRepo, hasManifest, localTags, makeDue, mirrorOf, startMirrorRegistry, syncNow, testSettings, upstreamDigest,
} from './test-support.ts';

const AUTH_PORT = 15641;
const CLOSED_PORT = 15649;
let reg: TestRegistry;
let secured: Distribution;
let fake: FakeUpstream;
let layoutDir: string;

beforeAll(async () => {
  const layout = await buildLayout(2);
  layoutDir = layout.dir;
  [reg, secured, fake] = await Promise.all([startMirrorRegistry(), startDistribution(AUTH_PORT, { htpasswd: true }), startFakeUpstream('lib/app')]);
  await secured.push(layoutDir, 'img0', 'private/app', 'v1');
  await secured.push(layoutDir, 'multi', 'private/app', 'multi');
}, 240_000);

afterAll(async () => {
  await Promise.all([reg?.close(), secured?.stop(), fake?.stop(), layoutDir && fs.rm(layoutDir, { recursive: true, force: true })]);
});

async function notificationsFor(repositoryId: number, event: string): Promise<number> {
  await reg.db.query(`INSERT INTO repositorynotification (repository_id, event, method) SELECT $1, $2, 'webhook'
    WHERE NOT EXISTS (SELECT 1 FROM repositorynotification WHERE repository_id = $1 AND event = $2)`, [repositoryId, event]);
  const { rows } = await reg.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM outbox WHERE queue_name = 'notification' AND payload->>'event' = $1
       AND payload->'eventData'->>'name' = (SELECT name FROM repository WHERE id = $2)`, [event, repositoryId]);
  return rows[0]!.n;
}

describe('an unreachable upstream', () => {
  it('fails with Quay\'s retry countdown 3 -> 2 -> 1 -> 3 (next interval), one started and one failed notification', async () => {
    const id = await createMirrorRepo(reg, 'down', { external: `127.0.0.1:${CLOSED_PORT}/library/app`, patterns: ['*'] });
    await notificationsFor(id, 'repo_mirror_sync_started');
    await notificationsFor(id, 'repo_mirror_sync_failed');
    const start = (await mirrorOf(reg, id)).sync_start_date!.getTime();
    for (const expected of [2, 1]) {
      expect(await syncNow(reg, id)).toBe('FAIL');
      const mirror = await mirrorOf(reg, id);
      expect(mirror).toMatchObject({ sync_status: RepoMirrorStatus.FAIL, sync_retries_remaining: expected, sync_expiration_date: null });
      expect(mirror.sync_start_date!.getTime()).toBe(start);
      expect(mirror.sync_last_error).toMatch(/cannot reach/);
    }
    expect(await syncNow(reg, id)).toBe('FAIL');
    const last = await mirrorOf(reg, id);
    expect(last.sync_retries_remaining).toBe(3);
    expect(last.sync_start_date!.getTime()).toBeGreaterThan(Date.now() + 86_000_000);
    expect(await syncNow(reg, id)).toBe('not_due');
    expect(await notificationsFor(id, 'repo_mirror_sync_started')).toBe(1);
    expect(await notificationsFor(id, 'repo_mirror_sync_failed')).toBe(1);
    const { rows } = await reg.db.query(`SELECT kind FROM logentry WHERE repository_id = $1 AND kind LIKE 'repo_mirror_sync_%' ORDER BY id`, [id]);
    expect(rows.filter((r) => r.kind === 'repo_mirror_sync_failed')).toHaveLength(3);
  });
});

describe('Basic auth (distribution with htpasswd)', () => {
  it('mirrors with the right credentials, stored encrypted', async () => {
    const id = await createMirrorRepo(reg, 'private', {
      external: `${secured.authority}/private/app`, patterns: ['*'], username: HTPASSWD_USER.username, password: HTPASSWD_USER.password,
    });
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    const basic = { authorization: `Basic ${Buffer.from(`${HTPASSWD_USER.username}:${HTPASSWD_USER.password}`).toString('base64')}` };
    expect(await localTags(reg, id)).toEqual({
      multi: await upstreamDigest(secured.authority, 'private/app', 'multi', basic), v1: await upstreamDigest(secured.authority, 'private/app', 'v1', basic),
    });
  });

  it('fails clearly with wrong credentials or none', async () => {
    const wrong = await createMirrorRepo(reg, 'wrongcreds', { external: `${secured.authority}/private/app`, patterns: ['*'], username: 'mirror', password: 'nope' });
    expect(await syncNow(reg, wrong)).toBe('FAIL');
    expect((await mirrorOf(reg, wrong)).sync_last_error).toMatch(/401.*authentication failed/);
    const none = await createMirrorRepo(reg, 'nocreds', { external: `${secured.authority}/private/app`, patterns: ['*'] });
    expect(await syncNow(reg, none)).toBe('FAIL');
    expect(await localTags(reg, none)).toEqual({});
  });

  it('fails when the stored credentials were encrypted with another key', async () => {
    const id = await createMirrorRepo(reg, 'rekeyed', { external: `${secured.authority}/private/app`, patterns: ['*'], username: 'a', password: 'b' });
    await reg.db.query(`UPDATE repomirrorconfig SET external_registry_password = 'v0$$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' WHERE repository_id = $1`, [id]);
    expect(await syncNow(reg, id)).toBe('FAIL');
    expect((await mirrorOf(reg, id)).sync_last_error).toMatch(/decrypt/);
  });
});

describe('a misbehaving upstream (scripted)', () => {
  it('a blob whose bytes do not match its digest fails its tag and leaves nothing visible', async () => {
    const bad = fakeImage('bad', { corrupt: true });
    fake.tags.set('bad', bad);
    fake.tags.set('good', fakeImage('good'));
    const id = await createMirrorRepo(reg, 'corrupt', { external: `${fake.authority}/lib/app`, patterns: ['good', 'bad'] });
    expect(await syncNow(reg, id)).toBe('FAIL');
    expect(Object.keys(await localTags(reg, id))).toEqual(['good']);
    const layer = [...bad.blobs.keys()][1]!;
    const { rows } = await reg.db.query(`SELECT 1 FROM imagestorage WHERE content_checksum = $1`, [layer]);
    expect(rows).toHaveLength(0);
    const { rows: logs } = await reg.db.query(`SELECT metadata_json FROM logentry WHERE repository_id = $1 AND kind = 'repo_mirror_sync_tag_failed'`, [id]);
    expect(logs[0].metadata_json).toMatchObject({ tag: 'bad', stderr: expect.stringMatching(/arrived with digest/) });
    const { rows: failed } = await reg.db.query(`SELECT metadata_json FROM logentry WHERE repository_id = $1 AND kind = 'repo_mirror_sync_failed'`, [id]);
    expect(failed[0].metadata_json).toMatchObject({ verb: 'lost', tags: 'bad(FAILED), good', message: expect.stringMatching(/: PARTIAL SYNC$/) });
    fake.tags.delete('bad');
  });

  it('honours Retry-After on 503', async () => {
    const id = await createMirrorRepo(reg, 'busy', { external: `${fake.authority}/lib/app`, patterns: ['good'] });
    fake.unavailable(2, 1);
    const started = Date.now();
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
  });

  it('a cancel mid-sync ends it as CANCEL: retries 0, no start date, a Cancelled event', async () => {
    fake.tags.set('second', fakeImage('second'));
    const id = await createMirrorRepo(reg, 'cancelled', { external: `${fake.authority}/lib/app`, patterns: ['good', 'second'] });
    const hold = fake.holdNext('manifests/good');
    const running = syncNow(reg, id);
    await hold.reached;
    await reg.db.query(`UPDATE repomirrorconfig SET sync_status = ${RepoMirrorStatus.CANCEL}, sync_expiration_date = NULL, sync_retries_remaining = 0 WHERE repository_id = $1`, [id]);
    hold.release();
    expect(await running).toBe('CANCEL');
    expect(await mirrorOf(reg, id)).toMatchObject({ sync_status: RepoMirrorStatus.CANCEL, sync_retries_remaining: 0, sync_start_date: null });
    expect(await localTags(reg, id)).not.toHaveProperty('second');
    const { rows } = await reg.db.query(`SELECT metadata_json FROM logentry WHERE repository_id = $1 AND kind = 'repo_mirror_sync_failed'`, [id]);
    expect(rows[0].metadata_json.verb).toBe('Cancelled');
  });

  it('an API edit mid-sync does not strand the sync (Quay leaves it SYNCING)', async () => {
    const id = await createMirrorRepo(reg, 'edited', { external: `${fake.authority}/lib/app`, patterns: ['good'] });
    const hold = fake.holdNext('manifests/good');
    const running = syncNow(reg, id);
    await hold.reached;
    const mirror = await mirrorOf(reg, id);
    await withTransaction(reg.db, (tx) => updateMirror(tx, mirror.id, { sync_interval: 60 }));
    hold.release();
    expect(await running).toBe('SUCCESS');
    expect(await mirrorOf(reg, id)).toMatchObject({ sync_status: RepoMirrorStatus.SUCCESS, sync_expiration_date: null, sync_interval: 60 });
  });
});

describe('claims and leases', () => {
  it('a lease left by a dead worker expires and the next tick takes the mirror over', async () => {
    const id = await createMirrorRepo(reg, 'orphan', { external: `${fake.authority}/lib/app`, patterns: ['good'] });
    expect(await claimMirror(reg.db, id, '00000000-0000-4000-8000-000000000001', new Date(), 500)).toBeDefined();
    expect(await syncNow(reg, id)).toBe('not_due');
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await findDueMirrors(reg.db, new Date(), 100)).map((r) => r.repository_id)).toContain(id);
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    expect(Object.keys(await localTags(reg, id))).toEqual(['good']);
  });

  it('two syncs of one repository at once: exactly one runs', async () => {
    const id = await createMirrorRepo(reg, 'race', { external: `${fake.authority}/lib/app`, patterns: ['good'] });
    const results = await Promise.all([syncNow(reg, id), syncNow(reg, id), syncNow(reg, id)]);
    expect(results.filter((r) => r === 'SUCCESS')).toHaveLength(1);
    expect(results.filter((r) => r === 'not_due')).toHaveLength(2);
  });

  it('the lease is renewed while a long sync runs', async () => {
    const id = await createMirrorRepo(reg, 'long', { external: `${fake.authority}/lib/app`, patterns: ['good'] });
    const hold = fake.holdNext('manifests/good');
    const running = syncNow(reg, id, testSettings({ leaseMs: 600 }));
    await hold.reached;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await syncNow(reg, id)).toBe('not_due');
    const mirror = await mirrorOf(reg, id);
    expect(mirror.sync_status).toBe(RepoMirrorStatus.SYNCING);
    expect(mirror.sync_expiration_date!.getTime()).toBeGreaterThan(Date.now());
    hold.release();
    expect(await running).toBe('SUCCESS');
  });
});

describe('a disabled mirror', () => {
  it('is never scheduled, but sync-now runs it once (Quay: SYNC_NOW ignores is_enabled)', async () => {
    fake.tags.set('manual', fakeImage('manual'));
    const id = await createMirrorRepo(reg, 'disabled', { external: `${fake.authority}/lib/app`, patterns: ['manual'], isEnabled: false });
    const due = async (): Promise<boolean> => (await findDueMirrors(reg.db, new Date(), 1000)).some((r) => r.repository_id === id);
    expect(await due()).toBe(false);
    expect(await syncNow(reg, id)).toBe('not_due');
    expect(await requestSyncNow(reg.db, id)).toBe(true);
    expect(await due()).toBe(true);
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    expect(await localTags(reg, id)).toEqual({ manual: fakeImage('manual').digest });
    expect((await mirrorOf(reg, id)).sync_status).toBe(RepoMirrorStatus.SUCCESS);
    await makeDue(reg, id);
    expect(await due()).toBe(false);
    expect(await syncNow(reg, id)).toBe('not_due');
    fake.tags.delete('manual');
  });
});

describe('REPO_MIRROR_ROLLBACK', () => {
  async function scenario(name: string, rollback: boolean): Promise<{ id: number; before: string }> {
    fake.tags.set('keep', fakeImage(`${name}-keep-1`));
    const id = await createMirrorRepo(reg, name, { external: `${fake.authority}/lib/app`, patterns: ['keep'] });
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    const before = (await localTags(reg, id)).keep!;
    fake.tags.set('keep', fakeImage(`${name}-keep-2`));
    fake.tags.set('added', fakeImage(`${name}-added`));
    fake.tags.set('broken', fakeImage(`${name}-broken`, { corrupt: true }));
    await reg.db.query(`UPDATE repomirrorrule SET rule_value = '["keep", "added", "broken"]' WHERE repository_id = $1`, [id]);
    await makeDue(reg, id);
    (reg.deps.config.quay as { REPO_MIRROR_ROLLBACK: boolean }).REPO_MIRROR_ROLLBACK = rollback;
    try {
      expect(await syncNow(reg, id)).toBe('FAIL');
    } finally {
      (reg.deps.config.quay as { REPO_MIRROR_ROLLBACK: boolean }).REPO_MIRROR_ROLLBACK = false;
      fake.tags.delete('broken');
      fake.tags.delete('added');
    }
    return { id, before };
  }

  it('on: the tags return to their pre-sync state, and what they un-tag is collected by GC when due', async () => {
    const { id, before } = await scenario('rollback-on', true);
    expect(await localTags(reg, id)).toEqual({ keep: before });
    // Every tag row the rollback ended ('added', and 'keep' on the synced manifest) is covered by
    // a garbagecollection job due when it leaves the time machine.
    const { rows } = await reg.db.query<{ ended_s: number; window_s: number; due_s: number | null }>(
      `SELECT ceil(max(t.lifetime_end_ms) / 1000.0)::int AS ended_s, max(n.removed_tag_expiration_s)::int AS window_s,
         (SELECT max((o.payload->>'dueAtS')::int) FROM outbox o WHERE o.queue_name = 'garbagecollection' AND (o.payload->>'repositoryId')::int = $1) AS due_s
       FROM tag t JOIN repository r ON r.id = t.repository_id JOIN namespace n ON n.id = r.namespace_user_id
       WHERE t.repository_id = $1 AND t.lifetime_end_ms IS NOT NULL`, [id]);
    expect(rows[0]!.due_s).toBeGreaterThanOrEqual(rows[0]!.ended_s + rows[0]!.window_s);
    // That job, run when due, collects what the failed sync brought in; the restored tag's content stays.
    await collectWhenDue(reg, id);
    const gone = [fakeImage('rollback-on-keep-2'), fakeImage('rollback-on-added')];
    for (const image of gone) {
      expect(await hasManifest(reg, id, image.digest)).toBe(false);
      for (const digest of image.blobs.keys()) expect(await blobObjectExists(reg, digest), digest).toBe(false);
    }
    const kept = fakeImage('rollback-on-keep-1');
    expect(await hasManifest(reg, id, kept.digest)).toBe(true);
    for (const digest of kept.blobs.keys()) expect(await blobObjectExists(reg, digest), digest).toBe(true);
    expect(await localTags(reg, id)).toEqual({ keep: before });
  });

  it('off (default): what synced stays; the failed tag never appeared', async () => {
    const { id, before } = await scenario('rollback-off', false);
    const tags = await localTags(reg, id);
    expect(Object.keys(tags)).toEqual(['added', 'keep']);
    expect(tags.keep).not.toBe(before);
  });
});

describe('an upstream that goes down mid-sync', () => {
  // The fake upstream behind a TCP proxy: the first tag is applied, then the network path is cut
  // while the other tags' manifests are being fetched, and stays down for the two retries. Returns
  // the tags left after the three failed attempts, and the first tag's digests before and after
  // it moved upstream.
  async function scenario(name: string, rollback: boolean): Promise<{ left: Record<string, string>; a1: string; a2: string }> {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(fake.authority.split(':')[1]) });
    const [a, b, c] = [`${name}-a`, `${name}-b`, `${name}-c`];
    const quay = { REPO_MIRROR_ROLLBACK: rollback };
    try {
      const a1 = fakeImage(`${name}-a1`);
      const a2 = fakeImage(`${name}-a2`);
      fake.tags.set(a, a1);
      const id = await createMirrorRepo(reg, name, { external: `127.0.0.1:${proxy.port}/lib/app`, patterns: [`${name}-*`] });
      await notificationsFor(id, 'repo_mirror_sync_started');
      await notificationsFor(id, 'repo_mirror_sync_failed');
      expect(await syncNow(reg, id)).toBe('SUCCESS');
      const startedBefore = await notificationsFor(id, 'repo_mirror_sync_started');
      fake.tags.set(a, a2).set(b, fakeImage(b)).set(c, fakeImage(c));
      await makeDue(reg, id);
      // b and c are fetched ahead, beside a: both held until the cut.
      const holds = [fake.holdNext(`manifests/${b}`), fake.holdNext(`manifests/${c}`)];
      const running = syncNow(reg, id, testSettings(), undefined, quay);
      await Promise.all(holds.map((h) => h.reached));
      await waitFor(async () => ((await localTags(reg, id))[a] === a2.digest ? true : undefined), 20_000, 50);
      await proxy.stop();
      for (const h of holds) h.release();
      expect(await running).toBe('FAIL');
      expect(await mirrorOf(reg, id)).toMatchObject({ sync_status: RepoMirrorStatus.FAIL, sync_retries_remaining: 2, sync_expiration_date: null });
      // The retries find it still down (the tag list fails); after the third, the next interval.
      expect(await syncNow(reg, id, testSettings(), undefined, quay)).toBe('FAIL');
      expect(await syncNow(reg, id, testSettings(), undefined, quay)).toBe('FAIL');
      const last = await mirrorOf(reg, id);
      expect(last).toMatchObject({ sync_retries_remaining: 3, sync_last_error: expect.stringMatching(/cannot reach/) });
      expect(last.sync_start_date!.getTime()).toBeGreaterThan(Date.now() + 86_000_000);
      expect(await notificationsFor(id, 'repo_mirror_sync_started')).toBe(startedBefore + 1);
      expect(await notificationsFor(id, 'repo_mirror_sync_failed')).toBe(1);
      const { rows } = await reg.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM logentry WHERE repository_id = $1 AND kind = 'repo_mirror_sync_failed'`, [id]);
      expect(rows[0]!.n).toBe(3);
      const left = await localTags(reg, id);
      // Back up: the next sync brings everything.
      await proxy.start();
      await makeDue(reg, id);
      expect(await syncNow(reg, id)).toBe('SUCCESS');
      expect(await localTags(reg, id)).toEqual({ [a]: a2.digest, [b]: fakeImage(b).digest, [c]: fakeImage(c).digest });
      return { left, a1: a1.digest, a2: a2.digest };
    } finally {
      await proxy.stop().catch(() => undefined);
      for (const tag of [a, b, c]) fake.tags.delete(tag);
    }
  }

  it('rollback on: the tag moved before the cut returns to its pre-sync manifest; one failed notification for three attempts', async () => {
    const { left, a1 } = await scenario('down-rollback', true);
    expect(left).toEqual({ 'down-rollback-a': a1 });
  });

  it('rollback off: the tag moved before the cut stays moved; nothing of the cut tags is visible', async () => {
    const { left, a2 } = await scenario('down-kept', false);
    expect(left).toEqual({ 'down-kept-a': a2 });
  });
});
