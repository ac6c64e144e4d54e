/**
 * The shrunk counterexamples the reliability fuzz (test/reliability/fuzz) found, kept so each bug
 * stays fixed: every one once answered a 5xx or an error in the wrong shape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, startTestRegistry, type TestRegistry } from '../test/helpers/registry.ts';

let t: TestRegistry;
const auth = basicAuth('owner', 'a long enough password');

beforeAll(async () => {
  t = await startTestRegistry({
    label: 'fuzzregressions',
    config: { FEATURE_SECURITY_SCANNER: true, FEATURE_SECURITY_NOTIFICATIONS: true, SECURITY_SCANNER_V4_ENDPOINT: 'http://clair.invalid:6060' },
  });
  await t.createUser('owner', 'a long enough password');
});
afterAll(async () => t?.close());

describe('fuzz counterexamples', () => {
  it('a JSON body nested 20000 deep is a 400, not a stack overflow (500)', async () => {
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    const headers = { authorization: auth, 'content-type': 'application/json' };
    const shrunk = await t.app.inject({ method: 'DELETE', url: '/api/v1/repository///permissions/user/%20', headers, payload: deep });
    expect(shrunk.statusCode).toBe(400);
    const create = await t.app.inject({ method: 'POST', url: '/api/v1/repository', headers, payload: deep });
    expect(create.statusCode).toBe(400);
    expect(create.json()).toMatchObject({ error_type: 'invalid_request' });
  });

  it('the Clair webhook with an empty or malformed Content-Type reads the body (400 in Quay\'s shape), not a 415 in the OCI shape', async () => {
    for (const type of ['', '!']) {
      const response = await t.app.inject({ method: 'POST', url: '/secscan/notification', headers: { 'content-type': type }, payload: '[[]]' });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error_type: 'invalid_request' });
    }
  });
});
