/**
 * Every /api/v1 route, fed malformed input by anonymous, wrongly signed-in and signed-in callers,
 * answers a 4xx (or a success) in Quay's error shape: never a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const PASSWORD = 'a long enough password';
let t: TestRegistry;

const ROUTES: [method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string][] = [
  ['POST', '/repository'],
  ['GET', '/repository?namespace=acme'],
  ['GET', '/repository/acme/app'],
  ['POST', '/repository/acme/app/changevisibility'],
  ['GET', '/repository/acme/app/tag/'],
  ['DELETE', '/repository/acme/app/tag/latest'],
  ['POST', '/repository/acme/app/tag/latest/restore'],
  ['POST', '/repository/acme/app/tag/latest/expire'],
  ['PUT', '/repository/acme/app/permissions/user/someone'],
  ['DELETE', '/repository/acme/app/permissions/user/someone'],
  ['PUT', '/repository/acme/app/permissions/team/owners'],
  ['DELETE', '/repository/acme/app/permissions/team/owners'],
  ['POST', '/organization/'],
  ['GET', '/organization/acme'],
  ['PUT', '/organization/acme'],
  ['PUT', '/organization/acme/robots/bot'],
  ['PUT', '/organization/acme/team/devs'],
  ['PUT', '/organization/acme/team/owners/members/someone'],
  ['DELETE', '/organization/acme/team/owners/members/someone'],
  ['GET', '/user/'],
  ['PUT', '/user/'],
  ['PUT', '/user/robots/bot'],
  ['POST', '/user/apptoken'],
  ['POST', '/superuser/users/'],
  ['DELETE', '/superuser/users/someone'],
  // Last, so they do not delete what the other routes work on.
  ['DELETE', '/repository/acme/app'],
  ['DELETE', '/organization/acme'],
];

const BODIES: (string | undefined)[] = [
  undefined, '', '{not json', 'null', '[]', '42', '"text"', '{"repository": 1, "visibility": []}',
  '{"role": {"x": 1}, "name": null, "tag_expiration_s": -5, "title": ""}',
  '{"repository": "a\\u0000b", "visibility": "private", "name": "x\\u0000", "role": "read", "manifest_digest": "sha256:\\u0000"}',
  '{"tag_expiration_s": 1e400, "is_alive": "maybe", "manifest_digest": 7}',
];

const CALLERS: Record<string, string | undefined> = {
  anonymous: undefined,
  wrongPassword: basicAuth('owner', 'wrong password'),
  garbageHeader: 'Basic %%%',
  nulUser: basicAuth('own\u0000er', PASSWORD),
  badBearer: 'Bearer \u0001',
  outsider: basicAuth('outsider', PASSWORD),
  owner: basicAuth('owner', PASSWORD),
};

beforeAll(async () => {
  t = await startTestRegistry({ label: 'apibadinput', config: { PERMANENTLY_DELETE_TAGS: true } });
  await t.createUser('owner', PASSWORD);
  await t.createUser('outsider', PASSWORD);
  await t.createUser('root', PASSWORD, { superuser: true });
  await t.createOrganization('acme', 'owner');
  await t.createRepository('acme/app');
});
afterAll(async () => t?.close());

describe('bad input never makes a 500', () => {
  for (const [callerName, authorization] of Object.entries(CALLERS)) {
    it(`every route, every malformed body, as ${callerName}`, async () => {
      const failures: string[] = [];
      // Failing credentials are refused before the body is read, and each costs a full scrypt:
      // one body per route is enough for them.
      const bodies = callerName === 'wrongPassword' ? BODIES.slice(2, 3) : BODIES;
      for (const [method, path] of ROUTES) {
        for (const body of bodies) {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (authorization) headers.authorization = authorization;
          const response = await t.app.inject({ method, url: `/api/v1${path}`, headers, ...(body === undefined ? {} : { payload: body }) });
          if (response.statusCode >= 500 && response.statusCode !== 503) failures.push(`${method} ${path} ${JSON.stringify(body)} -> ${response.statusCode} ${response.body}`);
          if (response.statusCode >= 400) {
            const json = response.json();
            if (typeof json.error_message !== 'string' || typeof json.status !== 'number') failures.push(`${method} ${path}: not Quay's error shape: ${response.body}`);
          }
        }
      }
      expect(failures).toEqual([]);
    });
  }

  it('hostile path parameters and query strings', async () => {
    const owner = basicAuth('owner', PASSWORD);
    for (const url of [
      '/api/v1/repository/%00/app', '/api/v1/repository/acme/%00', '/api/v1/repository/acme/app/tag/?limit=%00&page=-1',
      '/api/v1/repository?namespace=%00', '/api/v1/repository?public=true&next_page=%00', '/api/v1/organization/%00',
      `/api/v1/repository/${'a'.repeat(2000)}/app`, '/api/v1/repository/acme/app/tag/?specificTag=%00',
    ]) {
      const response = await t.app.inject({ method: 'GET', url, headers: { authorization: owner } });
      expect(response.statusCode, url).toBeGreaterThanOrEqual(400);
      expect(response.statusCode, url).toBeLessThan(500);
    }
  });

  it('/v2/auth with hostile credentials and scopes', async () => {
    for (const [authorization, scope] of [
      [basicAuth('own\u0000er', 'x'), 'repository:acme/app:pull'],
      [basicAuth('$app', 'A'.repeat(60) + '\u0000'.repeat(60)), 'repository:acme/app:pull'],
      [basicAuth('acme+\u0000', 'x'), 'repository:acme/app:pull'],
      [undefined, 'repository:acme/%00:pull'],
      [undefined, 'repository:acme/app:'],
      [undefined, ':::'],
    ] as const) {
      const response = await t.app.inject({ method: 'GET', url: `/v2/auth?scope=${scope}`, headers: authorization ? { authorization } : {} });
      expect(response.statusCode, `${scope}`).toBeGreaterThanOrEqual(400);
      expect(response.statusCode, `${scope}`).toBeLessThan(500);
    }
  });
});
