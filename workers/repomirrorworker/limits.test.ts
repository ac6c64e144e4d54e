/**
 * What bounds a sync, against a scripted upstream on loopback:
 * - the SSRF policy on every connection the transport makes (not only the pre-check): a name that
 *   resolves to loopback, or a loopback literal, not admitted by SSRF_ALLOWED_HOSTS is refused at
 *   connect time, also when the upstream redirects a blob there (DNS rebinding, redirect to an
 *   internal service); nothing is sent there;
 * - `skopeo_timeout`: the tag list, or one tag's copy, past it fails as Quay's killed skopeo does
 *   (the tag fails, the others go on, the sync ends FAIL with the retry countdown).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RepoMirrorStatus } from '../../shared/db/mirrors.ts';
import { fakeImage, startFakeUpstream, type FakeUpstream } from '../../test/helpers/fake-upstream.ts';
import type { TestRegistry } from '../../test/helpers/registry.ts';
import { createMirrorRepo, localTags, mirrorOf, startMirrorRegistry, syncNow, testSettings } from './test-support.ts';
import { Transport, UpstreamConnectionError } from './transport.ts';

let reg: TestRegistry;
let fake: FakeUpstream;

beforeAll(async () => {
  [reg, fake] = await Promise.all([startMirrorRegistry(), startFakeUpstream('lib/app')]);
}, 240_000);

afterAll(async () => {
  await Promise.all([reg?.close(), fake?.stop()]);
});

function seen(fragment: string): number {
  return fake.requests.filter((r) => r.includes(fragment)).length;
}

describe('the SSRF policy on each connection', () => {
  const port = (): string => fake.authority.split(':')[1]!;

  it('refuses a name resolving to loopback at connect time unless an address or range admits it', async () => {
    const before = seen('/v2/ping-guarded');
    const guarded = new Transport({ verifyTls: false, idleTimeoutMs: 5000, ssrf: { allowedHosts: [], blockedHostnames: [] } });
    const refused = guarded.send(new URL(`http://localhost:${port()}/v2/ping-guarded`), { method: 'GET', headers: {} });
    await expect(refused).rejects.toThrow(UpstreamConnectionError);
    await expect(refused).rejects.toThrow(/localhost resolves to .*loopback address, which is not allowed \(see SSRF_ALLOWED_HOSTS\)/);
    const literal = guarded.send(new URL(`http://127.0.0.2:${port()}/v2/ping-guarded`), { method: 'GET', headers: {} });
    await expect(literal).rejects.toThrow(/127\.0\.0\.2 .*loopback address, which is not allowed/);
    expect(seen('/v2/ping-guarded')).toBe(before);
    guarded.close();
    // An address range admits what resolves into it; a `host:port` entry admits that name on that port.
    for (const allowedHosts of [['127.0.0.0/8', '::1/128'], [`localhost:${port()}`]]) {
      const admitted = new Transport({ verifyTls: false, idleTimeoutMs: 5000, ssrf: { allowedHosts, blockedHostnames: [] } });
      const response = await admitted.send(new URL(`http://localhost:${port()}/v2/`), { method: 'GET', headers: {} });
      response.resume();
      expect(response.statusCode).toBe(200);
      admitted.close();
    }
  });

  it('refuses a blob the upstream redirects to a loopback name or address the policy does not admit', async () => {
    const image = fakeImage('redirected');
    fake.tags.set('redirected', image);
    const layer = [...image.blobs.keys()][1]!;
    const id = await createMirrorRepo(reg, 'redirected', { external: `${fake.authority}/lib/app`, patterns: ['redirected'] });
    // The upstream itself is admitted by `host:port` only: neither `localhost` nor 127.0.0.2 is.
    const only = { SSRF_ALLOWED_HOSTS: [fake.authority] };
    for (const location of [`http://localhost:${port()}/internal/${layer}`, `http://127.0.0.2:${port()}/internal/${layer}`]) {
      fake.redirects.set(`/blobs/${layer}`, location);
      expect(await syncNow(reg, id, testSettings(), undefined, only)).toBe('FAIL');
      const { rows } = await reg.db.query<{ stderr: string }>(
        `SELECT metadata_json->>'stderr' AS stderr FROM logentry WHERE repository_id = $1 AND kind = 'repo_mirror_sync_tag_failed' ORDER BY id DESC LIMIT 1`, [id]);
      expect(rows[0]!.stderr).toMatch(/loopback address, which is not allowed/);
      await reg.db.query(`UPDATE repomirrorconfig SET sync_start_date = now() - interval '1 second' WHERE repository_id = $1`, [id]);
    }
    expect(seen('/internal/')).toBe(0);
    expect(await localTags(reg, id)).toEqual({});
    fake.redirects.clear();
    fake.tags.delete('redirected');
  });
});

describe('skopeo_timeout', () => {
  it('a tag list that does not come within skopeo_timeout fails the sync early (FAIL, retries 2)', async () => {
    fake.tags.set('t1', fakeImage('t1'));
    const id = await createMirrorRepo(reg, 'slow-list', { external: `${fake.authority}/lib/app`, patterns: ['*'], skopeoTimeout: 1 });
    const held = fake.holdNext('/tags/list');
    const started = Date.now();
    expect(await syncNow(reg, id)).toBe('FAIL');
    expect(Date.now() - started).toBeLessThan(4000); // the idle limit is 5 s: the deadline ended it
    held.release();
    const mirror = await mirrorOf(reg, id);
    expect(mirror).toMatchObject({ sync_status: RepoMirrorStatus.FAIL, sync_retries_remaining: 2, sync_expiration_date: null });
    expect(mirror.sync_last_error).toMatch(/listing tags did not finish within skopeo_timeout \(1 s\)/);
    fake.tags.delete('t1');
  });

  it('a tag whose copy exceeds skopeo_timeout fails; the other tags are mirrored (PARTIAL SYNC)', async () => {
    const slow = fakeImage('slow');
    const quick = fakeImage('quick');
    fake.tags.set('slow', slow).set('quick', quick);
    // 3 s: the quick tag must copy within it from its turn, on a loaded machine too (1 s failed it at load 30-38).
    const id = await createMirrorRepo(reg, 'slow-tag', { external: `${fake.authority}/lib/app`, patterns: ['slow', 'quick'], skopeoTimeout: 3 });
    const held = fake.holdNext(`/blobs/${[...slow.blobs.keys()][1]!}`);
    expect(await syncNow(reg, id)).toBe('FAIL');
    held.release();
    expect(await localTags(reg, id)).toEqual({ quick: quick.digest });
    const mirror = await mirrorOf(reg, id);
    expect(mirror).toMatchObject({ sync_status: RepoMirrorStatus.FAIL, sync_retries_remaining: 2 });
    const { rows } = await reg.db.query<{ kind: string; tag: string | null; message: string; stderr: string | null }>(
      `SELECT kind, metadata_json->>'tag' AS tag, metadata_json->>'message' AS message, metadata_json->>'stderr' AS stderr
       FROM logentry WHERE repository_id = $1 AND kind IN ('repo_mirror_sync_tag_failed', 'repo_mirror_sync_failed') ORDER BY id`, [id]);
    expect(rows[0]).toMatchObject({ kind: 'repo_mirror_sync_tag_failed', tag: 'slow' });
    expect(rows[0]!.stderr).toMatch(/copying tag slow did not finish within skopeo_timeout \(3 s\)/);
    expect(rows[1]).toMatchObject({ kind: 'repo_mirror_sync_failed' });
    expect(rows[1]!.message).toMatch(/PARTIAL SYNC$/);
    fake.tags.delete('slow');
    fake.tags.delete('quick');
  });
});
