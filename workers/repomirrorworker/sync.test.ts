/**
 * The sync engine against a real upstream: the CNCF distribution registry on 127.0.0.1:15640,
 * populated with skopeo. Mirrors 20 tags sharing layers plus a two-platform index, then pulls
 * from quayfleet and compares digests; rule changes, a moved and a deleted upstream tag, the
 * architecture filter, a counting proxy proving each blob crosses once and held blobs not at all.
 */
import fs from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RepoMirrorStatus } from '../../shared/db/mirrors.ts';
import { startCountingProxy, type CountingProxy } from '../../test/helpers/counting-proxy.ts';
import { startDistribution, type Distribution } from '../../test/helpers/distribution.ts';
import type { TestRegistry } from '../../test/helpers/registry.ts';
import {
  buildLayout, createMirrorRepo, localTags, makeDue, mirrorOf, pullFromQuayfleet, startMirrorRegistry, syncNow, upstreamDigest,
} from './test-support.ts';

const PORT = 15640;
let reg: TestRegistry;
let upstream: Distribution;
let layout: { dir: string; refs: string[] };
let proxy: CountingProxy;
const TAGS = Array.from({ length: 20 }, (_, i) => `v1.${i}`);

beforeAll(async () => {
  [reg, upstream, layout, proxy] = await Promise.all([startMirrorRegistry(), startDistribution(PORT), buildLayout(21), startCountingProxy()]);
  for (let i = 0; i < TAGS.length; i += 5) {
    await Promise.all(TAGS.slice(i, i + 5).map((tag, j) => upstream.push(layout.dir, layout.refs[i + j]!, 'library/app', tag)));
  }
  await upstream.push(layout.dir, 'multi', 'library/app', 'multi');
  await upstream.push(layout.dir, 'img0', 'library/app', 'latest');
}, 240_000);

afterAll(async () => {
  await Promise.all([reg?.close(), upstream?.stop(), proxy?.stop(), layout && fs.rm(layout.dir, { recursive: true, force: true })]);
});

describe('mirroring from a distribution upstream', () => {
  let repoId: number;

  it('mirrors 20 tags and an index; quayfleet serves the upstream digests', async () => {
    repoId = await createMirrorRepo(reg, 'app', {
      external: `127.0.0.1:${PORT}/library/app`, patterns: ['v1.*', 'multi'], registryConfig: { verify_tls: false, proxy: { http_proxy: proxy.url } },
    });
    expect(await syncNow(reg, repoId)).toBe('SUCCESS');
    const tags = await localTags(reg, repoId);
    expect(Object.keys(tags).sort()).toEqual([...TAGS, 'multi'].sort());
    for (const tag of ['v1.0', 'v1.7', 'multi']) {
      const pulled = await pullFromQuayfleet(reg, 'app', tag);
      expect(pulled.digest).toBe(await upstreamDigest(upstream.authority, 'library/app', tag));
      expect(pulled.blobsVerified).toBeGreaterThan(0);
    }
    const mirror = await mirrorOf(reg, repoId);
    expect(mirror).toMatchObject({ sync_status: RepoMirrorStatus.SUCCESS, sync_retries_remaining: 3, sync_expiration_date: null, sync_claim_id: null });
    expect(mirror.sync_start_date!.getTime()).toBeGreaterThan(Date.now() + 86_000_000);
    // Through the proxy: each unique blob crossed once (3 base layers, 20 own layers, 20 configs, index: 2 configs + 2 layers).
    const blobGets = proxy.requests.filter((r) => r.startsWith('GET /v2/library/app/blobs/'));
    expect(new Set(blobGets).size).toBe(blobGets.length);
    expect(blobGets.length).toBe(3 + 20 + 20 + 4);
  });

  it('a second sync transfers nothing and leaves the tags as they are', async () => {
    proxy.requests.length = 0;
    await makeDue(reg, repoId);
    const before = await localTags(reg, repoId);
    expect(await syncNow(reg, repoId)).toBe('SUCCESS');
    expect(await localTags(reg, repoId)).toEqual(before);
    expect(proxy.requests.filter((r) => r.includes('/blobs/'))).toEqual([]);
  });

  it('a new mirror of the same upstream transfers no blob the registry already holds', async () => {
    proxy.requests.length = 0;
    const other = await createMirrorRepo(reg, 'app-copy', {
      external: `127.0.0.1:${PORT}/library/app`, patterns: ['v1.1?'], registryConfig: { verify_tls: false, proxy: { http_proxy: proxy.url } },
    });
    expect(await syncNow(reg, other)).toBe('SUCCESS');
    expect(Object.keys(await localTags(reg, other))).toEqual(TAGS.filter((t) => /^v1\.1\d$/.test(t)));
    expect(proxy.requests.filter((r) => r.includes('/blobs/'))).toEqual([]);
    expect((await pullFromQuayfleet(reg, 'app-copy', 'v1.12')).digest).toBe(await upstreamDigest(upstream.authority, 'library/app', 'v1.12'));
  });

  it('a narrower rule removes the tags it no longer selects', async () => {
    await reg.db.query(`UPDATE repomirrorrule SET rule_value = '["v1.1", "v1.[2-3]", "multi"]' WHERE repository_id = $1`, [repoId]);
    await makeDue(reg, repoId);
    expect(await syncNow(reg, repoId)).toBe('SUCCESS');
    expect(Object.keys(await localTags(reg, repoId))).toEqual(['multi', 'v1.1', 'v1.2', 'v1.3']);
  });

  it('follows an upstream tag that moved and drops one deleted upstream', async () => {
    await upstream.push(layout.dir, 'img20', 'library/app', 'v1.2');
    await upstream.deleteTag('library/app', 'v1.3');
    await makeDue(reg, repoId);
    expect(await syncNow(reg, repoId)).toBe('SUCCESS');
    const tags = await localTags(reg, repoId);
    expect(Object.keys(tags)).toEqual(['multi', 'v1.1', 'v1.2']);
    expect(tags['v1.2']).toBe(await upstreamDigest(upstream.authority, 'library/app', 'v1.2'));
  });

  it('keeps only the filtered architecture of an index, with the original index bytes (sparse)', async () => {
    const sparse = await createMirrorRepo(reg, 'app-arm', {
      external: `127.0.0.1:${PORT}/library/app`, patterns: ['multi', 'latest'], architectures: ['arm64'],
    });
    expect(await syncNow(reg, sparse)).toBe('SUCCESS');
    const tags = await localTags(reg, sparse);
    // `latest` is a single amd64 image: skipped (a success, as Quay), so only the index is here.
    expect(Object.keys(tags)).toEqual(['multi']);
    expect(tags.multi).toBe(await upstreamDigest(upstream.authority, 'library/app', 'multi'));
    const { rows } = await reg.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM manifestchild c JOIN manifest m ON m.id = c.manifest_id WHERE m.repository_id = $1`, [sparse]);
    expect(rows[0]!.n).toBe(1);
  });

  it('nothing matching is a success that leaves local tags alone (as Quay)', async () => {
    await reg.db.query(`UPDATE repomirrorrule SET rule_value = '["nothing-*"]' WHERE repository_id = $1`, [repoId]);
    await makeDue(reg, repoId);
    expect(await syncNow(reg, repoId)).toBe('SUCCESS');
    expect(Object.keys(await localTags(reg, repoId))).toEqual(['multi', 'v1.1', 'v1.2']);
  });

  it('writes Quay log kinds with all metadata keys', async () => {
    const { rows } = await reg.db.query<{ kind: string; metadata_json: Record<string, unknown> }>(
      `SELECT kind, metadata_json FROM logentry WHERE repository_id = $1 AND kind LIKE 'repo_mirror_sync_%' ORDER BY id`, [repoId]);
    expect(rows[0]!.kind).toBe('repo_mirror_sync_started');
    expect(Object.keys(rows[0]!.metadata_json).sort()).toEqual(['message', 'namespace', 'repo', 'stderr', 'stdout', 'tag', 'tags', 'verb']);
    expect(rows[0]!.metadata_json.message).toBe(`'127.0.0.1:${PORT}/library/app' with tag pattern 'v1.*,multi'`);
    expect(rows.filter((r) => r.kind === 'repo_mirror_sync_tag_success').length).toBeGreaterThanOrEqual(21);
    expect(rows.at(-1)!.metadata_json).toMatchObject({ verb: 'end', tags: 'No tags matched' });
  });
});
