/**
 * Bearer-token upstreams: a second quayfleet instance as the upstream (Docker token auth: the
 * `WWW-Authenticate: Bearer realm=...` challenge, a token fetched with Basic credentials or
 * anonymously for a public repository), populated with skopeo, then mirrored and compared.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { buildLayout, createMirrorRepo, localTags, mirrorOf, startMirrorRegistry, syncNow } from './test-support.ts';

const run = promisify(execFile);
let upstream: TestRegistry;
let upstreamAuthority: string;
let reg: TestRegistry;
let layoutDir: string;
const upstreamIds: Record<string, number> = {};

beforeAll(async () => {
  const layout = await buildLayout(2);
  layoutDir = layout.dir;
  [upstream, reg] = await Promise.all([startTestRegistry({ label: 'upstreamqf' }), startMirrorRegistry()]);
  upstreamAuthority = new URL(await upstream.listen()).host;
  await upstream.createUser('up', 'uppassword');
  upstreamIds.private = (await upstream.createRepository('up/private')).id;
  upstreamIds.public = (await upstream.createRepository('up/public', { visibility: 'public' })).id;
  for (const [ref, repo, tag] of [['img0', 'private', 'v1'], ['multi', 'private', 'multi'], ['img1', 'public', 'latest']] as const) {
    await run('skopeo', ['copy', '--all', '--quiet', '--dest-tls-verify=false', '--dest-creds', 'up:uppassword', `oci:${layoutDir}:${ref}`, `docker://${upstreamAuthority}/up/${repo}:${tag}`]);
  }
}, 240_000);

afterAll(async () => {
  await Promise.all([upstream?.close(), reg?.close(), layoutDir && fs.rm(layoutDir, { recursive: true, force: true })]);
});

describe('a quayfleet upstream (bearer tokens)', () => {
  it('mirrors a private repository with credentials through the token flow', async () => {
    const id = await createMirrorRepo(reg, 'from-qf', { external: `${upstreamAuthority}/up/private`, patterns: ['*'], username: 'up', password: 'uppassword' });
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    expect(await localTags(reg, id)).toEqual(await localTags(upstream, upstreamIds.private!));
  });

  it('mirrors a public repository anonymously', async () => {
    const id = await createMirrorRepo(reg, 'from-qf-public', { external: `${upstreamAuthority}/up/public`, patterns: ['*'] });
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    expect(await localTags(reg, id)).toEqual(await localTags(upstream, upstreamIds.public!));
  });

  it('fails with a clear error when the token endpoint refuses the credentials', async () => {
    const id = await createMirrorRepo(reg, 'from-qf-wrong', { external: `${upstreamAuthority}/up/private`, patterns: ['*'], username: 'up', password: 'wrong' });
    expect(await syncNow(reg, id)).toBe('FAIL');
    expect((await mirrorOf(reg, id)).sync_last_error).toMatch(/authentication failed/);
  });
});
