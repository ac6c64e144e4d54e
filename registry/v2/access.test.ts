import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { V2Client, errorCode, expectStatus, imageManifest, sha256 } from './test-support.ts';

let registry: TestRegistry;
let clock = Date.now();
let owner: V2Client;
let image: { digest: string };
const repo = 'alice/private';

beforeAll(async () => {
  registry = await startTestRegistry({ label: 'v2access', now: () => clock });
  await registry.createUser('alice', 'password1');
  await registry.createUser('bob', 'password2');
  owner = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', [`repository:${repo}:pull,push,delete`, 'repository:alice/public:pull,push']));
  image = await owner.pushImage(repo, 'v1', Buffer.from('{"p":1}'), [randomBytes(20)]);
  await owner.pushImage('alice/public', 'v1', Buffer.from('{"p":2}'), [randomBytes(20)]);
  await registry.db.query(`UPDATE repository SET visibility = 'public' WHERE name = 'public'`);
});
afterAll(async () => registry?.close());

// Every repository route, with what it needs.
function routes(digest: string): [string, 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE', string][] {
  const uuid = '0b5e6f3a-1111-4222-8333-444455556666';
  return [
    ['pull', 'GET', `/v2/${repo}/manifests/v1`],
    ['pull', 'HEAD', `/v2/${repo}/manifests/${digest}`],
    ['pull', 'GET', `/v2/${repo}/blobs/${digest}`],
    ['pull', 'GET', `/v2/${repo}/tags/list`],
    ['pull', 'GET', `/v2/${repo}/referrers/${digest}`],
    ['push', 'PUT', `/v2/${repo}/manifests/v2`],
    ['push', 'POST', `/v2/${repo}/blobs/uploads/`],
    ['push', 'PATCH', `/v2/${repo}/blobs/uploads/${uuid}`],
    ['push', 'PUT', `/v2/${repo}/blobs/uploads/${uuid}?digest=${digest}`],
    ['push', 'GET', `/v2/${repo}/blobs/uploads/${uuid}`],
    ['push', 'DELETE', `/v2/${repo}/blobs/uploads/${uuid}`],
    ['delete', 'DELETE', `/v2/${repo}/manifests/v1`],
  ];
}

describe('authorization on every /v2 route', () => {
  it('challenges anonymous callers (401 with WWW-Authenticate naming the scope)', async () => {
    const anonymous = new V2Client(registry.app);
    for (const [action, method, url] of routes(image.digest)) {
      const response = await anonymous.request(method, url, { payload: method === 'PATCH' || method === 'PUT' ? '{}' : undefined });
      expect([method, url, response.statusCode, errorCode(response)]).toEqual([method, url, 401, method === 'HEAD' ? undefined : 'UNAUTHORIZED']);
      const scope = action === 'push' ? 'pull,push' : action;
      expect(response.headers['www-authenticate']).toContain(`scope="repository:${repo}:${scope}"`);
    }
  });

  it('denies a signed-in caller whose token lacks the scope (403 DENIED), and one with a pull-only token for writes', async () => {
    const bob = new V2Client(registry.app, await registry.tokenFor('bob', 'password2', [`repository:${repo}:pull,push,delete`]));
    for (const [, method, url] of routes(image.digest)) {
      const response = await bob.request(method, url, { payload: method === 'PATCH' || method === 'PUT' ? '{}' : undefined });
      expect([method, url, response.statusCode, errorCode(response)]).toEqual([method, url, 403, method === 'HEAD' ? undefined : 'DENIED']);
    }
    const pullOnly = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', [`repository:${repo}:pull`]));
    for (const [action, method, url] of routes(image.digest)) {
      if (action === 'pull') continue;
      const response = await pullOnly.request(method, url, { payload: method === 'PATCH' || method === 'PUT' ? '{}' : undefined });
      expect([method, url, response.statusCode]).toEqual([method, url, 403]);
    }
  });

  it('refuses an expired token and a forged one with 401', async () => {
    const token = await registry.tokenFor('alice', 'password1', [`repository:${repo}:pull`]);
    clock += 2 * 3600 * 1000;
    try {
      const expired = await new V2Client(registry.app, token).request('GET', `/v2/${repo}/manifests/v1`);
      expect([expired.statusCode, errorCode(expired)]).toEqual([401, 'UNAUTHORIZED']);
      const version = await new V2Client(registry.app, token).request('GET', '/v2/');
      expect(version.statusCode).toBe(401);
    } finally {
      clock -= 2 * 3600 * 1000;
    }
    const forged = await new V2Client(registry.app, `${token.slice(0, -4)}AAAA`).request('GET', `/v2/${repo}/manifests/v1`);
    expect(forged.statusCode).toBe(401);
  });

  it('lets anonymous callers pull a public repository', async () => {
    const anonymous = new V2Client(registry.app);
    expectStatus(await anonymous.request('GET', '/v2/alice/public/manifests/v1'), 200);
    expect((await anonymous.request('POST', '/v2/alice/public/blobs/uploads/')).statusCode).toBe(401);
  });

  it('answers NAME_UNKNOWN for a repository the owner has not created', async () => {
    const token = await registry.tokenFor('alice', 'password1', ['repository:alice/missing:pull']);
    const response = await new V2Client(registry.app, token).request('GET', '/v2/alice/missing/tags/list');
    expect([response.statusCode, errorCode(response)]).toEqual([404, 'NAME_UNKNOWN']);
  });
});

describe('listings', () => {
  it('paginates tags with n and last and a Link header', async () => {
    const config = Buffer.from('{"p":1}');
    const m = imageManifest(config, []);
    await owner.uploadBlob(repo, config);
    for (const tag of ['a', 'b', 'c', 'd', 'e']) expectStatus(await owner.putManifest(repo, m, tag), 201);
    const first = expectStatus(await owner.request('GET', `/v2/${repo}/tags/list?n=2`), 200);
    expect(first.json()).toEqual({ name: repo, tags: ['a', 'b'] });
    expect(first.headers.link).toBe(`</v2/${repo}/tags/list?n=2&last=b>; rel="next"`);
    const next = expectStatus(await owner.request('GET', `/v2/${repo}/tags/list?n=2&last=b`), 200);
    expect(next.json()).toEqual({ name: repo, tags: ['c', 'd'] });
    const last = expectStatus(await owner.request('GET', `/v2/${repo}/tags/list?n=10&last=d`), 200);
    expect(last.json()).toEqual({ name: repo, tags: ['e', 'v1'] });
    expect(last.headers.link).toBeUndefined();
    const bad = await owner.request('GET', `/v2/${repo}/tags/list?n=-1`);
    expect(bad.statusCode).toBe(400);
  });

  it('lists in _catalog only the repositories the caller may see, paginated', async () => {
    const alice = await owner.request('GET', '/v2/_catalog');
    expect(alice.json()).toEqual({ repositories: ['alice/private', 'alice/public'] });
    const page = await owner.request('GET', '/v2/_catalog?n=1');
    expect(page.json()).toEqual({ repositories: ['alice/private'] });
    expect(page.headers.link).toBe('</v2/_catalog?n=1&last=alice%2Fprivate>; rel="next"');
    const bob = new V2Client(registry.app, await registry.tokenFor('bob', 'password2', ['repository:bob/x:pull']));
    expect((await bob.request('GET', '/v2/_catalog')).json()).toEqual({ repositories: ['alice/public'] });
    expect((await new V2Client(registry.app).request('GET', '/v2/_catalog')).json()).toEqual({ repositories: ['alice/public'] });
  });

  it('answers unknown endpoints and methods with 404 and 405', async () => {
    expect((await owner.request('GET', `/v2/${repo}/nothing/here`)).statusCode).toBe(404);
    expect((await owner.request('POST', `/v2/${repo}/manifests/v1`)).statusCode).toBe(405);
    expect((await owner.request('GET', `/v2/${repo}/blobs/uploads/`)).statusCode).toBe(405);
    expect(sha256('x')).toMatch(/^sha256:/);
  });
});
