import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { V2Client, errorCode, expectStatus, imageIndex, imageManifest, sha256 } from './test-support.ts';

let registry: TestRegistry;
let client: V2Client;
const repo = 'alice/app';

beforeAll(async () => {
  registry = await startTestRegistry({ label: 'v2pushpull' });
  await registry.createUser('alice', 'password1');
  client = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', [`repository:${repo}:pull,push,delete`, 'repository:alice/nested/deep/app:pull,push']));
});
afterAll(async () => registry?.close());

describe('push and pull', () => {
  it('answers the version check with a challenge, then 200 with a token', async () => {
    const anonymous = await new V2Client(registry.app).request('GET', '/v2/');
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/v2\/auth",service="/);
    const ok = await client.request('GET', '/v2/');
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['docker-distribution-api-version']).toBe('registry/2.0');
  });

  it('pushes blobs every way and an image, then pulls everything back byte-exact', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layers = [randomBytes(3000), randomBytes(10), Buffer.alloc(0)];
    await client.uploadBlob(repo, config, 'monolithic');
    await client.uploadBlob(repo, layers[0]!, 'chunks', 700);
    await client.uploadBlob(repo, layers[1]!, 'patch');
    await client.uploadBlob(repo, layers[2]!, 'patch');
    const manifest = imageManifest(config, layers);
    const put = expectStatus(await client.putManifest(repo, manifest, 'v1'), 201);
    expect(put.headers['docker-content-digest']).toBe(manifest.digest);
    expect(put.headers.location).toBe(`/v2/${repo}/manifests/${manifest.digest}`);

    for (const ref of ['v1', manifest.digest]) {
      const got = expectStatus(await client.request('GET', `/v2/${repo}/manifests/${ref}`), 200);
      expect(got.rawPayload.equals(manifest.bytes)).toBe(true);
      expect(got.headers['content-type']).toBe(manifest.mediaType);
      expect(got.headers['docker-content-digest']).toBe(manifest.digest);
      const head = expectStatus(await client.request('HEAD', `/v2/${repo}/manifests/${ref}`), 200);
      expect(head.headers['content-length']).toBe(String(manifest.bytes.length));
      expect(head.body).toBe('');
    }
    for (const blob of [config, ...layers]) {
      const got = expectStatus(await client.request('GET', `/v2/${repo}/blobs/${sha256(blob)}`), 200);
      expect(got.rawPayload.equals(blob)).toBe(true);
      expect(got.headers['docker-content-digest']).toBe(sha256(blob));
      const head = expectStatus(await client.request('HEAD', `/v2/${repo}/blobs/${sha256(blob)}`), 200);
      expect(head.headers['content-length']).toBe(String(blob.length));
    }
  });

  it('serves byte ranges and refuses unsatisfiable ones', async () => {
    const blob = randomBytes(100);
    const digest = await client.uploadBlob(repo, blob, 'patch');
    const part = expectStatus(await client.request('GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: 'bytes=10-19' } }), 206);
    expect(part.rawPayload.equals(blob.subarray(10, 20))).toBe(true);
    expect(part.headers['content-range']).toBe('bytes 10-19/100');
    const suffix = expectStatus(await client.request('GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: 'bytes=-5' } }), 206);
    expect(suffix.rawPayload.equals(blob.subarray(95))).toBe(true);
    const open = expectStatus(await client.request('GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: 'bytes=90-' } }), 206);
    expect(open.rawPayload.equals(blob.subarray(90))).toBe(true);
    const bad = await client.request('GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: 'bytes=100-' } });
    expect(bad.statusCode).toBe(416);
    expect(bad.headers['content-range']).toBe('bytes */100');
  });

  it('handles nested repository names', async () => {
    const name = 'alice/nested/deep/app';
    const m = await client.pushImage(name, 'latest', Buffer.from('{}'), [randomBytes(50)]);
    const got = expectStatus(await client.request('GET', `/v2/${name}/manifests/latest`), 200);
    expect(got.rawPayload.equals(m.bytes)).toBe(true);
    const tags = expectStatus(await client.request('GET', `/v2/${name}/tags/list`), 200);
    expect(tags.json()).toEqual({ name, tags: ['latest'] });
  });

  it('pushes an index whose children exist, and refuses one whose children do not', async () => {
    const a = await client.pushImage(repo, 'amd64', Buffer.from('{"a":1}'), [randomBytes(20)]);
    const b = await client.pushImage(repo, 'arm64', Buffer.from('{"b":1}'), [randomBytes(20)]);
    const index = imageIndex([a, b]);
    expectStatus(await client.putManifest(repo, index, 'multi'), 201);
    const got = expectStatus(await client.request('GET', `/v2/${repo}/manifests/multi`), 200);
    expect(got.rawPayload.equals(index.bytes)).toBe(true);
    const orphan = imageIndex([imageManifest(Buffer.from('x'), [])]);
    const refused = await client.putManifest(repo, orphan, 'orphan');
    expect(refused.statusCode).toBe(404);
    expect(errorCode(refused)).toBe('MANIFEST_BLOB_UNKNOWN');
  });
});
