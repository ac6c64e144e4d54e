import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../../test/helpers/registry.ts';
import { OCI_EMPTY, OCI_IMAGE_MANIFEST } from '../../manifests/media-types.ts';
import { V2Client, errorCode, expectStatus, imageManifest, sha256 } from '../test-support.ts';

let registry: TestRegistry;
let client: V2Client;
const repo = 'acme/web';
const SBOM = 'application/vnd.example.sbom.v1+json';

beforeAll(async () => {
  registry = await startTestRegistry({
    label: 'v2manifests',
    config: { MAXIMUM_MANIFEST_SIZE_BYTES: 4096, ALLOWED_OCI_ARTIFACT_TYPES: { [SBOM]: ['application/json'], 'application/vnd.oci.image.config.v1+json': [] } },
  });
  await registry.createUser('alice', 'password1');
  await registry.createOrganization('acme', 'alice');
  client = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', [`repository:${repo}:pull,push,delete`]));
});
afterAll(async () => registry?.close());

async function rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  return (await registry.db.query(sql, params)).rows as T[];
}

describe('manifest validation', () => {
  it.each([
    ['malformed JSON', Buffer.from('{"schemaVersion":'), OCI_IMAGE_MANIFEST, 400, 'MANIFEST_INVALID'],
    ['a mediaType contradicting Content-Type', imageManifest(Buffer.from('{}'), []).bytes, 'application/vnd.docker.distribution.manifest.v2+json', 400, 'MANIFEST_INVALID'],
    ['a schema error', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_IMAGE_MANIFEST, layers: [] })), OCI_IMAGE_MANIFEST, 400, 'MANIFEST_INVALID'],
    ['Docker schema 1', Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'acme/web', tag: 'x', fsLayers: [], history: [] })), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 415, 'UNSUPPORTED'],
    ['too many bytes', Buffer.from(JSON.stringify({ schemaVersion: 2, pad: 'x'.repeat(5000) })), OCI_IMAGE_MANIFEST, 413, 'SIZE_INVALID'],
    ['an unknown blob', imageManifest(Buffer.from('{"unknown":1}'), [randomBytes(5)]).bytes, OCI_IMAGE_MANIFEST, 404, 'MANIFEST_BLOB_UNKNOWN'],
  ])('refuses %s', async (_name, bytes, contentType, status, code) => {
    const response = await client.request('PUT', `/v2/${repo}/manifests/bad`, { headers: { 'content-type': contentType }, payload: bytes });
    expect([response.statusCode, errorCode(response)]).toEqual([status, code]);
    expect(await rows('SELECT 1 FROM tag WHERE name = $1', ['bad'])).toEqual([]);
  });

  it('refuses a digest in the URL that does not match the bytes, a bad tag, a mismatching descriptor size', async () => {
    const config = Buffer.from('{"os":"linux"}');
    await client.uploadBlob(repo, config, 'monolithic');
    const m = imageManifest(config, []);
    const wrongDigest = await client.putManifest(repo, m, sha256('other'));
    expect([wrongDigest.statusCode, errorCode(wrongDigest)]).toEqual([400, 'DIGEST_INVALID']);
    const badTag = await client.putManifest(repo, m, '-not-a-tag');
    expect([badTag.statusCode, errorCode(badTag)]).toEqual([400, 'TAG_INVALID']);
    const body = JSON.parse(m.bytes.toString()) as { config: { size: number } };
    body.config.size += 1;
    const wrongSize = await client.request('PUT', `/v2/${repo}/manifests/size`, { headers: { 'content-type': OCI_IMAGE_MANIFEST }, payload: JSON.stringify(body) });
    expect([wrongSize.statusCode, errorCode(wrongSize)]).toEqual([400, 'MANIFEST_INVALID']);
  });

  it.each(['.INVALID_MANIFEST_NAME', '-dash', 'a'.repeat(129), 'sha256:abc', 'sha256:' + 'A'.repeat(64), 'md5:' + 'a'.repeat(32), 'tag+plus'])(
    'answers 404 MANIFEST_UNKNOWN to GET, HEAD and DELETE of %s (neither a tag nor a digest), 400 to PUT', async (reference) => {
      const url = `/v2/${repo}/manifests/${encodeURIComponent(reference)}`;
      for (const method of ['GET', 'DELETE'] as const) {
        const response = await client.request(method, url);
        expect([method, response.statusCode, errorCode(response)]).toEqual([method, 404, 'MANIFEST_UNKNOWN']);
      }
      expect((await client.request('HEAD', url)).statusCode).toBe(404);
      const put = await client.request('PUT', url, { headers: { 'content-type': OCI_IMAGE_MANIFEST }, payload: imageManifest(Buffer.from('{}'), []).bytes });
      expect(put.statusCode).toBe(400);
      expect(['TAG_INVALID', 'DIGEST_INVALID']).toContain(errorCode(put));
      // Authorization still comes first: no token, no answer about the manifest.
      expect((await new V2Client(registry.app).request('GET', url)).statusCode).toBe(401);
    });

  it('applies ALLOWED_OCI_ARTIFACT_TYPES', async () => {
    const config = Buffer.from('{}');
    await client.uploadBlob(repo, config);
    const layer = Buffer.from('{"sbom":true}');
    await client.uploadBlob(repo, layer);
    const helm = { ...JSON.parse(imageManifest(config, [layer]).bytes.toString()), config: { mediaType: 'application/vnd.cncf.helm.config.v1+json', digest: sha256(config), size: config.length } };
    const refused = await client.request('PUT', `/v2/${repo}/manifests/helm`, { headers: { 'content-type': OCI_IMAGE_MANIFEST }, payload: JSON.stringify(helm) });
    expect([refused.statusCode, errorCode(refused)]).toEqual([400, 'MANIFEST_INVALID']);
  });
});

describe('manifest push, tag moves and deletes', () => {
  it('moves a tag: the old row ends now, a new row starts, GC is scheduled at the end of the time machine', async () => {
    const first = await client.pushImage(repo, 'stable', Buffer.from('{"v":1}'), [randomBytes(30)]);
    const before = Date.now();
    const second = await client.pushImage(repo, 'stable', Buffer.from('{"v":2}'), [randomBytes(30)]);
    const tags = await rows<{ digest: string; lifetime_end_ms: number | null }>(
      `SELECT m.digest, t.lifetime_end_ms FROM tag t JOIN manifest m ON m.id = t.manifest_id WHERE t.name = 'stable' ORDER BY t.id`);
    expect(tags.map((t) => t.digest)).toEqual([first.digest, second.digest]);
    expect(tags[0]!.lifetime_end_ms).toBeGreaterThanOrEqual(before);
    expect(tags[1]!.lifetime_end_ms).toBeNull();
    const dueAtS = Math.ceil(tags[0]!.lifetime_end_ms! / 1000) + 1_209_600;
    const gc = await rows<{ run_at: Date }>(`SELECT run_at FROM outbox WHERE queue_name = 'garbagecollection' AND payload->>'reason' = 'tag_expired' AND (payload->>'dueAtS')::bigint = $1`, [dueAtS]);
    expect(gc.length).toBe(1);
    expect(gc[0]!.run_at.getTime()).toBe(dueAtS * 1000);
    const pulled = expectStatus(await client.request('GET', `/v2/${repo}/manifests/stable`), 200);
    expect(pulled.headers['docker-content-digest']).toBe(second.digest);
  });

  it('logs push_repo with the tag and digest, in the same transaction as the manifest', async () => {
    const m = await client.pushImage(repo, 'logged', Buffer.from('{"v":3}'), [randomBytes(30)]);
    const logs = await rows<{ metadata_json: Record<string, unknown>; performer_id: number }>(
      `SELECT metadata_json, performer_id FROM logentry WHERE kind = 'push_repo' AND metadata_json->>'tag' = 'logged'`);
    expect(logs.length).toBe(1);
    expect(logs[0]!.metadata_json).toMatchObject({ tag: 'logged', digest: m.digest, repo: 'web', namespace: 'acme' });
  });

  it('keeps a manifest pushed by digest alive with a hidden tag it does not list', async () => {
    const m = await client.pushImage(repo, '', Buffer.from('{"v":4}'), [randomBytes(30)]).catch(() => undefined);
    expect(m).toBeUndefined(); // an empty reference is not a route
    const config = Buffer.from('{"v":5}');
    await client.uploadBlob(repo, config);
    const byDigest = imageManifest(config, []);
    expectStatus(await client.putManifest(repo, byDigest), 201);
    const hidden = await rows<{ name: string; lifetime_end_ms: number }>(
      `SELECT t.name, t.lifetime_end_ms FROM tag t JOIN manifest m ON m.id = t.manifest_id WHERE m.digest = $1`, [byDigest.digest]);
    expect(hidden.length).toBe(1);
    expect(hidden[0]!.name).toMatch(/^\$temp-/);
    expect(hidden[0]!.lifetime_end_ms - Date.now()).toBeGreaterThan(3500_000);
    const tags = expectStatus(await client.request('GET', `/v2/${repo}/tags/list`), 200).json() as { tags: string[] };
    expect(tags.tags.some((t) => t.startsWith('$'))).toBe(false);
  });

  it('deletes by tag (202, MANIFEST_UNKNOWN after) and by digest (every tag of the manifest), logging delete_tag', async () => {
    const m = await client.pushImage(repo, 'doomed', Buffer.from('{"v":6}'), [randomBytes(30)]);
    expectStatus(await client.putManifest(repo, m, 'doomed-too'), 201);
    expectStatus(await client.request('DELETE', `/v2/${repo}/manifests/doomed`), 202);
    const gone = await client.request('GET', `/v2/${repo}/manifests/doomed`);
    expect([gone.statusCode, errorCode(gone)]).toEqual([404, 'MANIFEST_UNKNOWN']);
    expectStatus(await client.request('GET', `/v2/${repo}/manifests/doomed-too`), 200);
    expectStatus(await client.request('DELETE', `/v2/${repo}/manifests/${m.digest}`), 202);
    expect((await client.request('GET', `/v2/${repo}/manifests/doomed-too`)).statusCode).toBe(404);
    const logs = await rows<{ tag: string }>(`SELECT metadata_json->>'tag' AS tag FROM logentry WHERE kind = 'delete_tag' ORDER BY id`);
    expect(logs.map((l) => l.tag)).toEqual(['doomed', 'doomed-too']);
    const again = await client.request('DELETE', `/v2/${repo}/manifests/doomed`);
    expect([again.statusCode, errorCode(again)]).toEqual([404, 'MANIFEST_UNKNOWN']);
    const unknown = await client.request('DELETE', `/v2/${repo}/manifests/${sha256('nothing')}`);
    expect([unknown.statusCode, errorCode(unknown)]).toEqual([404, 'MANIFEST_UNKNOWN']);
  });

  it('writes nothing at all when any part of the push transaction fails', async () => {
    const config = Buffer.from('{"atomic":true}');
    const layer = randomBytes(40);
    await client.uploadBlob(repo, config);
    await client.uploadBlob(repo, layer);
    const m = imageManifest(config, [layer]);
    await registry.db.query(`CREATE FUNCTION fail_push_log() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.kind = 'push_repo' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$`);
    await registry.db.query(`CREATE TRIGGER fail_push_log BEFORE INSERT ON logentry FOR EACH ROW EXECUTE FUNCTION fail_push_log()`);
    const outboxBefore = await rows<{ n: number }>(`SELECT count(*)::int AS n FROM outbox`);
    try {
      const response = await client.putManifest(repo, m, 'atomic');
      expect(response.statusCode).toBe(500);
    } finally {
      await registry.db.query(`DROP TRIGGER fail_push_log ON logentry; DROP FUNCTION fail_push_log()`);
    }
    expect(await rows(`SELECT 1 FROM manifest WHERE digest = $1`, [m.digest])).toEqual([]);
    expect(await rows(`SELECT 1 FROM manifestblob mb JOIN manifest x ON x.id = mb.manifest_id WHERE x.digest = $1`, [m.digest])).toEqual([]);
    expect(await rows(`SELECT 1 FROM tag WHERE name = 'atomic'`)).toEqual([]);
    expect(await rows<{ n: number }>(`SELECT count(*)::int AS n FROM outbox`)).toEqual(outboxBefore);
    expectStatus(await client.putManifest(repo, m, 'atomic'), 201);
  });
});

describe('referrers', () => {
  it('answers OCI-Subject on push and lists referrers, filtered by artifactType', async () => {
    const subject = await client.pushImage(repo, 'signed', Buffer.from('{"v":7}'), [randomBytes(30)]);
    const empty = Buffer.from('{}');
    const sbom = Buffer.from('{"packages":[]}');
    await client.uploadBlob(repo, empty);
    await client.uploadBlob(repo, sbom);
    const referrer = imageManifest(empty, [], {
      artifactType: SBOM, config: { mediaType: OCI_EMPTY, digest: sha256(empty), size: empty.length },
      layers: [{ mediaType: 'application/json', digest: sha256(sbom), size: sbom.length }],
      subject: { mediaType: OCI_IMAGE_MANIFEST, digest: subject.digest, size: subject.bytes.length },
      annotations: { 'org.example.kind': 'sbom' },
    });
    const put = expectStatus(await client.putManifest(repo, referrer), 201);
    expect(put.headers['oci-subject']).toBe(subject.digest);
    const list = expectStatus(await client.request('GET', `/v2/${repo}/referrers/${subject.digest}`), 200);
    expect(list.headers['content-type']).toBe('application/vnd.oci.image.index.v1+json');
    expect(list.json()).toEqual({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: OCI_IMAGE_MANIFEST, digest: referrer.digest, size: referrer.bytes.length, artifactType: SBOM, annotations: { 'org.example.kind': 'sbom' } }],
    });
    const filtered = expectStatus(await client.request('GET', `/v2/${repo}/referrers/${subject.digest}?artifactType=application/x-other`), 200);
    expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
    expect((filtered.json() as { manifests: unknown[] }).manifests).toEqual([]);
    const none = expectStatus(await client.request('GET', `/v2/${repo}/referrers/${sha256('no subject')}`), 200);
    expect((none.json() as { manifests: unknown[] }).manifests).toEqual([]);
    // A referrer pushed by digest is kept by a hidden tag without end.
    const kept = await rows<{ lifetime_end_ms: number | null }>(`SELECT t.lifetime_end_ms FROM tag t JOIN manifest m ON m.id = t.manifest_id WHERE m.digest = $1`, [referrer.digest]);
    expect(kept).toEqual([{ lifetime_end_ms: null }]);
  });
});
