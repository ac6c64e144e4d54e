/**
 * What the copy engine reads from an upstream, on real servers: Docker schema 2 images and
 * manifest lists (pushed to distribution by skopeo with `--format v2s2`), an OCI artifact
 * (`artifactType`, the empty config, a non-image layer); a tag list in pages (`Link: rel="next"`)
 * and 429 with Retry-After, from the scripted upstream (distribution pages only past the 1000 tags
 * the engine asks for, and never answers 429).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciLayout } from '../../test/fixtures/oci/layout.ts';
import { startDistribution, type Distribution } from '../../test/helpers/distribution.ts';
import { fakeImage, startFakeUpstream, type FakeUpstream } from '../../test/helpers/fake-upstream.ts';
import type { TestRegistry } from '../../test/helpers/registry.ts';
import { buildLayout, createMirrorRepo, localTags, startMirrorRegistry, syncNow, upstreamDigest } from './test-support.ts';

const PORT = 23010;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
let reg: TestRegistry;
let upstream: Distribution;
let fake: FakeUpstream;
let layoutDir: string;

/** Adds an OCI artifact (an SBOM-like payload on the empty config) to the layout as `ref`. */
async function addArtifact(dir: string, ref: string): Promise<void> {
  const layout = new (OciLayout as unknown as new (dir: string) => OciLayout)(dir);
  const empty = await layout.writeBlob(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
  const payload = await layout.writeBlob(Buffer.from('{"sbom":"quayfleet mirror test"}'), 'application/vnd.example.sbom.v1+json');
  const manifest = await layout.writeBlob(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.sbom.v1',
    config: { mediaType: empty.mediaType, digest: empty.digest, size: empty.size },
    layers: [{ mediaType: payload.mediaType, digest: payload.digest, size: payload.size }],
  })), OCI_MANIFEST);
  const indexPath = path.join(dir, 'index.json');
  const index = JSON.parse(await fs.readFile(indexPath, 'utf8')) as { manifests: unknown[] };
  index.manifests.push({ ...manifest, annotations: { 'org.opencontainers.image.ref.name': ref } });
  await fs.writeFile(indexPath, JSON.stringify(index));
}

beforeAll(async () => {
  const layout = await buildLayout(1);
  layoutDir = layout.dir;
  await addArtifact(layoutDir, 'sbom');
  [reg, upstream, fake] = await Promise.all([startMirrorRegistry(), startDistribution(PORT), startFakeUpstream('lib/app')]);
  await upstream.push(layoutDir, 'img0', 'library/formats', 'docker', { format: 'v2s2' });
  await upstream.push(layoutDir, 'multi', 'library/formats', 'dockerlist', { format: 'v2s2' });
  await upstream.push(layoutDir, 'multi', 'library/formats', 'ociindex');
  await upstream.push(layoutDir, 'sbom', 'library/formats', 'sbom');
}, 240_000);

afterAll(async () => {
  await Promise.all([reg?.close(), upstream?.stop(), fake?.stop(), layoutDir && fs.rm(layoutDir, { recursive: true, force: true })]);
});

async function manifestRow(repositoryId: number, digest: string): Promise<{ media_type: string; artifact_type: string | null; children: number } | undefined> {
  const { rows } = await reg.db.query<{ media_type: string; artifact_type: string | null; children: number }>(
    `SELECT m.media_type, m.artifact_type, (SELECT count(*)::int FROM manifestchild c WHERE c.manifest_id = m.id) AS children
     FROM manifest m WHERE m.repository_id = $1 AND m.digest = $2`, [repositoryId, digest]);
  return rows[0];
}

describe('manifest formats from distribution', () => {
  it('Docker schema 2 images and manifest lists, OCI indexes and an OCI artifact: exact bytes, upstream digests', async () => {
    const id = await createMirrorRepo(reg, 'formats', { external: `${upstream.authority}/library/formats`, patterns: ['*'] });
    expect(await syncNow(reg, id)).toBe('SUCCESS');
    const tags = await localTags(reg, id);
    expect(Object.keys(tags)).toEqual(['docker', 'dockerlist', 'ociindex', 'sbom']);
    for (const tag of Object.keys(tags)) expect(tags[tag], tag).toBe(await upstreamDigest(upstream.authority, 'library/formats', tag));
    expect(await manifestRow(id, tags.docker!)).toMatchObject({ media_type: 'application/vnd.docker.distribution.manifest.v2+json', children: 0 });
    expect(await manifestRow(id, tags.dockerlist!)).toMatchObject({ media_type: 'application/vnd.docker.distribution.manifest.list.v2+json', children: 2 });
    expect(await manifestRow(id, tags.ociindex!)).toMatchObject({ media_type: 'application/vnd.oci.image.index.v1+json', children: 2 });
    expect(await manifestRow(id, tags.sbom!)).toMatchObject({ media_type: OCI_MANIFEST, artifact_type: 'application/vnd.example.sbom.v1' });
    // What quayfleet serves is the upstream's bytes.
    const token = await reg.tokenFor('admin', 'adminpass', ['repository:mirrors/formats:pull']);
    for (const tag of Object.keys(tags)) {
      const served = await reg.app.inject({
        method: 'GET', url: `/v2/mirrors/formats/manifests/${tag}`,
        headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' },
      });
      const original = await fetch(`http://${upstream.authority}/v2/library/formats/manifests/${tag}`, {
        headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' },
      });
      expect(served.statusCode, tag).toBe(200);
      expect(served.rawPayload.equals(Buffer.from(await original.arrayBuffer())), tag).toBe(true);
    }
  });
});

describe('the scripted upstream', () => {
  it('follows a tag list in pages (Link rel="next")', async () => {
    const names = Array.from({ length: 7 }, (_, i) => `page-${i}`);
    for (const name of names) fake.tags.set(name, fakeImage(name));
    fake.pageSize = 2;
    try {
      const id = await createMirrorRepo(reg, 'paged', { external: `${fake.authority}/lib/app`, patterns: ['page-*'] });
      expect(await syncNow(reg, id)).toBe('SUCCESS');
      expect(Object.keys(await localTags(reg, id))).toEqual(names);
      expect(fake.requests.filter((r) => r.startsWith('GET /v2/lib/app/tags/list')).length).toBeGreaterThanOrEqual(4);
    } finally {
      fake.pageSize = undefined;
      for (const name of names) fake.tags.delete(name);
    }
  });

  it('honours Retry-After on 429', async () => {
    fake.tags.set('limited', fakeImage('limited'));
    try {
      const id = await createMirrorRepo(reg, 'limited', { external: `${fake.authority}/lib/app`, patterns: ['limited'] });
      fake.unavailable(2, 1, 429);
      const started = Date.now();
      expect(await syncNow(reg, id)).toBe('SUCCESS');
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
      expect(Object.keys(await localTags(reg, id))).toEqual(['limited']);
    } finally {
      fake.tags.delete('limited');
    }
  });
});
