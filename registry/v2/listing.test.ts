/**
 * `n` on tags/list and _catalog, read as distribution reads it: a decimal integer of at least 0;
 * anything else is 400 PAGINATION_NUMBER_INVALID (distribution v3, whose answers the CNCF
 * registry's tags and catalog handlers give for negative and non-numeric values).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { V2Client, errorCode, expectStatus, imageManifest } from './test-support.ts';

let registry: TestRegistry;
let client: V2Client;
const repo = 'alice/pages';

beforeAll(async () => {
  registry = await startTestRegistry({ label: 'v2listing' });
  await registry.createUser('alice', 'password1');
  client = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', [`repository:${repo}:pull,push`]));
  const config = Buffer.from('{"pages":1}');
  await client.uploadBlob(repo, config);
  for (const tag of ['a', 'b', 'c']) expectStatus(await client.putManifest(repo, imageManifest(config, []), tag), 201);
});
afterAll(async () => registry?.close());

const LISTINGS = [`/v2/${repo}/tags/list`, '/v2/_catalog'];

describe('n', () => {
  it.each([
    ['-1', '-1'], ['%2D5', '-5'], ['abc', 'abc'], ['1.5', '1.5'], ['1e3', '1e3'], ['0x10', '0x10'], ['%201', ' 1'],
    ['99999999999999999999', '99999999999999999999'], ['9223372036854775808', '9223372036854775808'],
  ])('refuses n=%s with 400 PAGINATION_NUMBER_INVALID on both listings', async (query, n) => {
    for (const path of LISTINGS) {
      const response = await client.request('GET', `${path}?n=${query}`);
      expect([path, response.statusCode, errorCode(response)]).toEqual([path, 400, 'PAGINATION_NUMBER_INVALID']);
      expect((response.json() as { errors: { detail: unknown }[] }).errors[0]!.detail).toEqual({ n });
    }
  });

  it('refuses n given twice', async () => {
    const response = await client.request('GET', `/v2/${repo}/tags/list?n=1&n=2`);
    expect([response.statusCode, errorCode(response)]).toEqual([400, 'PAGINATION_NUMBER_INVALID']);
  });

  it('answers an empty page to n=0 and a full one to an empty n, as distribution', async () => {
    expect(expectStatus(await client.request('GET', `/v2/${repo}/tags/list?n=0`), 200).json()).toEqual({ name: repo, tags: [] });
    expect(expectStatus(await client.request('GET', '/v2/_catalog?n=0'), 200).json()).toEqual({ repositories: [] });
    expect(expectStatus(await client.request('GET', `/v2/${repo}/tags/list?n=`), 200).json()).toEqual({ name: repo, tags: ['a', 'b', 'c'] });
  });

  it('reads +2 and 02 as 2 (Go strconv.Atoi), and a huge n as the largest page', async () => {
    for (const n of ['%2B2', '02']) {
      const page = expectStatus(await client.request('GET', `/v2/${repo}/tags/list?n=${n}`), 200);
      expect(page.json()).toEqual({ name: repo, tags: ['a', 'b'] });
      expect(page.headers.link).toBe(`</v2/${repo}/tags/list?n=2&last=b>; rel="next"`);
    }
    const huge = expectStatus(await client.request('GET', `/v2/${repo}/tags/list?n=9223372036854775807`), 200);
    expect(huge.json()).toEqual({ name: repo, tags: ['a', 'b', 'c'] });
    expect(expectStatus(await client.request('GET', '/v2/_catalog?n=5000'), 200).json()).toEqual({ repositories: [repo] });
  });
});
