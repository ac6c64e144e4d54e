/**
 * Text Postgres cannot store (a NUL character, percent-encoding that is not UTF-8) is refused at
 * the edge on every route: 400 with the route's error code, never a 500 from the database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, startTestRegistry, type TestRegistry } from '../test/helpers/registry.ts';
import { refusalForUrl } from './input-guard.ts';
import { V2Client, errorCode } from './v2/test-support.ts';

const PASSWORD = 'a long enough password';
const DIGEST = `sha256:${'a'.repeat(64)}`;
const UUID = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
let t: TestRegistry;
let client: V2Client;

beforeAll(async () => {
  t = await startTestRegistry({ label: 'inputguard' });
  await t.createUser('alice', PASSWORD);
  await t.createRepository('alice/app');
  client = new V2Client(t.app, await t.tokenFor('alice', PASSWORD, ['repository:alice/app:pull,push,delete']));
});
afterAll(async () => t?.close());

/** Percent-encodings that are a NUL or not UTF-8: NUL, a lone continuation byte, a truncated pair, a surrogate, an overlong NUL, a broken escape. */
const BAD = ['%00', 'a%00b', '%FF', '%C3%28', '%ED%A0%80', '%C0%80', '%zz'];

type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

/** Every /v2 route, with `{name}`, `{ref}` and `{q}` marking where the bad text goes, and the code each place answers. */
const V2_ROUTES: [Method, string, Partial<Record<'name' | 'ref' | 'q', string>>][] = [
  ['GET', '/v2/{name}/app/manifests/v1', { name: 'NAME_INVALID' }],
  ['GET', '/v2/alice/app/manifests/{ref}', { ref: 'TAG_INVALID' }],
  ['HEAD', '/v2/alice/app/manifests/{ref}', { ref: 'TAG_INVALID' }],
  ['PUT', '/v2/alice/app/manifests/{ref}', { ref: 'TAG_INVALID' }],
  ['DELETE', '/v2/alice/app/manifests/{ref}', { ref: 'TAG_INVALID' }],
  ['GET', '/v2/alice/app/manifests/sha256:{ref}', { ref: 'DIGEST_INVALID' }],
  ['GET', '/v2/alice/{name}/blobs/{ref}', { name: 'NAME_INVALID', ref: 'DIGEST_INVALID' }],
  ['HEAD', '/v2/alice/app/blobs/{ref}', { ref: 'DIGEST_INVALID' }],
  ['DELETE', '/v2/alice/app/blobs/{ref}', { ref: 'DIGEST_INVALID' }],
  ['POST', '/v2/alice/{name}/blobs/uploads/', { name: 'NAME_INVALID' }],
  ['POST', `/v2/alice/app/blobs/uploads/?digest={q}`, { q: 'DIGEST_INVALID' }],
  ['POST', `/v2/alice/app/blobs/uploads/?mount={q}&from=alice/other`, { q: 'DIGEST_INVALID' }],
  ['POST', `/v2/alice/app/blobs/uploads/?mount=${DIGEST}&from={q}`, { q: 'NAME_INVALID' }],
  ['GET', '/v2/alice/app/blobs/uploads/{ref}', { ref: 'BLOB_UPLOAD_INVALID' }],
  ['PATCH', '/v2/alice/app/blobs/uploads/{ref}', { ref: 'BLOB_UPLOAD_INVALID' }],
  ['PUT', `/v2/alice/app/blobs/uploads/${UUID}?digest={q}`, { q: 'DIGEST_INVALID' }],
  ['DELETE', '/v2/alice/app/blobs/uploads/{ref}', { ref: 'BLOB_UPLOAD_INVALID' }],
  ['GET', '/v2/{name}/app/tags/list?last={q}', { name: 'NAME_INVALID', q: 'TAG_INVALID' }],
  ['GET', '/v2/alice/app/tags/list?n={q}', { q: 'PAGINATION_NUMBER_INVALID' }],
  ['GET', '/v2/_catalog?last={q}', { q: 'NAME_INVALID' }],
  ['GET', '/v2/_catalog?n={q}', { q: 'PAGINATION_NUMBER_INVALID' }],
  ['GET', `/v2/alice/app/referrers/{ref}?artifactType={q}`, { ref: 'DIGEST_INVALID', q: 'UNSUPPORTED' }],
  ['GET', '/v2/auth?service=x&scope={q}', { q: 'NAME_INVALID' }],
  ['GET', '/v2/alice/app/tags/list?{q}=1', { q: 'UNSUPPORTED' }],
  ['GET', '/v2/{name}', { name: 'NAME_INVALID' }],
];

describe('on /v2', () => {
  it.each([
    ['/v2/alice/app/tags/list?last=%00', 'TAG_INVALID'],
    ['/v2/_catalog?last=%00', 'NAME_INVALID'],
    [`/v2/alice/app/referrers/${DIGEST}?artifactType=a%00`, 'UNSUPPORTED'],
  ])('GET %s -> 400 %s (the cases the fault probe found answering 500)', async (url, code) => {
    const response = await client.request('GET', url);
    expect([response.statusCode, errorCode(response)]).toEqual([400, code]);
  });

  it('answers 400 with the code of the part that is wrong, on every route, for every kind of bad text', async () => {
    const wrong: string[] = [];
    for (const [method, template, codes] of V2_ROUTES) {
      for (const [place, code] of Object.entries(codes)) {
        for (const bad of BAD) {
          const fill = (p: string) => (p === place ? bad : p === 'ref' ? (template.includes('uploads/{ref}') ? UUID : template.includes('/manifests/{ref}') ? 'v1' : DIGEST) : p === 'name' ? (template.startsWith('/v2/{name}') ? 'alice' : 'app') : DIGEST);
          const url = template.replace(/\{(name|ref|q)\}/g, (_m, p: string) => fill(p));
          const response = await client.request(method, url, method === 'PUT' || method === 'PATCH' ? { payload: Buffer.from('{}'), headers: { 'content-type': 'application/octet-stream' } } : {});
          const got = method === 'HEAD' ? code : errorCode(response);
          if (response.statusCode !== 400 || got !== code) wrong.push(`${method} ${url}: ${response.statusCode} ${got ?? response.body} (want 400 ${code})`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('leaves clean text alone, encoded or not', () => {
    for (const url of ['/v2/alice/app/tags/list?last=caf%C3%A9&n=10', '/v2/alice/app/manifests/v1', `/v2/auth?scope=repository%3Aalice%2Fapp%3Apull&service=x+y`, '/v2/_catalog?n=', '/v2/']) {
      expect(refusalForUrl(url), url).toBeUndefined();
    }
  });
});

/** Quay API routes with a path segment and a query parameter to spoil. */
const API_ROUTES: [Method, string][] = [
  ['GET', '/api/v1/repository/{p}/app?includeTags={q}'],
  ['GET', '/api/v1/repository?namespace={q}'],
  ['POST', '/api/v1/repository?x={q}'],
  ['GET', '/api/v1/repository/acme/{p}/tag/?specificTag={q}'],
  ['DELETE', '/api/v1/repository/alice/app/tag/{p}?skipRecoveryPeriod={q}'],
  ['POST', '/api/v1/repository/alice/app/tag/{p}/restore?x={q}'],
  ['PUT', '/api/v1/repository/alice/app/permissions/user/{p}?x={q}'],
  ['GET', '/api/v1/organization/{p}?x={q}'],
  ['GET', '/api/v1/organization/{p}/quota?x={q}'],
  ['PUT', '/api/v1/user/robots/{p}?x={q}'],
  ['GET', '/api/v1/superuser/gc/dryrun?limit={q}'],
];

describe('on /api/v1', () => {
  it('answers 400 in Quay\'s error shape for bad text in any path segment or query parameter', async () => {
    const wrong: string[] = [];
    for (const [method, template] of API_ROUTES) {
      for (const place of ['p', 'q'].filter((p) => template.includes(`{${p}}`))) {
        for (const bad of BAD) {
          const url = template.replace(/\{(p|q)\}/g, (_m, p: string) => (p === place ? bad : 'x'));
          const response = await t.app.inject({ method, url, headers: { authorization: basicAuth('alice', PASSWORD) } });
          const body = response.json() as { error_type?: string; status?: number };
          if (response.statusCode !== 400 || body.error_type !== 'invalid_request' || body.status !== 400) wrong.push(`${method} ${url}: ${response.statusCode} ${response.body}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it.each([
    ['a value', '{"repository": "a\\u0000b", "visibility": "private"}'],
    ['a key', '{"repo\\u0000sitory": "ab", "repository": "ab", "visibility": "private"}'],
    ['a nested value', '{"repository": "ab", "visibility": "private", "x": [{"y": "\\u0000"}]}'],
  ])('refuses a JSON body with NUL in %s, before any route reads it', async (_where, payload) => {
    const response = await t.app.inject({
      method: 'POST', url: '/api/v1/repository', payload, headers: { authorization: basicAuth('alice', PASSWORD), 'content-type': 'application/json' },
    });
    expect([response.statusCode, (response.json() as { error_type: string }).error_type]).toEqual([400, 'invalid_request']);
    expect((await t.db.query(`SELECT 1 FROM repository WHERE name = 'ab'`)).rowCount).toBe(0);
  });

  it('accepts an escaped backslash followed by u0000, which is not a NUL', async () => {
    const response = await t.app.inject({
      method: 'POST', url: '/api/v1/repository', payload: '{"repository": "cd", "visibility": "private", "description": "\\\\u0000"}',
      headers: { authorization: basicAuth('alice', PASSWORD), 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(201);
  });
});
