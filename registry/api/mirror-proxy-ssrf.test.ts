/**
 * Mirror proxies are outbound URLs a repository admin sets: one on a loopback, link-local
 * (metadata) or private address is refused with 400 unless SSRF_ALLOWED_HOSTS names it (found by
 * the reliability security part: the API stored any proxy and the worker connected to it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const admin: [string, string] = ['owner', 'a long enough password'];
const url = '/repository/acme/mirrored/mirror';
let t: TestRegistry;

beforeAll(async () => {
  t = await startTestRegistry({
    label: 'mirrorproxyssrf',
    config: { FEATURE_REPO_MIRROR: true, DATABASE_SECRET_KEY: 'k'.repeat(40), SSRF_ALLOWED_HOSTS: ['upstream.example', 'proxy.internal', '10.9.0.0/16'] },
  });
  await t.createUser(...admin);
  await t.createOrganization('acme', 'owner');
  await t.createRobot('acme', 'mirror');
  await t.createRepository('acme/mirrored');
});
afterAll(async () => t?.close());

const create = (proxy: Record<string, string>) => t.api('POST', url, { as: admin, body: {
  external_reference: 'upstream.example/library/app', sync_interval: 3600, sync_start_date: '2026-01-01T00:00:00Z',
  robot_username: 'acme+mirror', root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['*'] }, external_registry_config: { proxy },
} });
const change = (proxy: Record<string, string>) => t.api('PUT', url, { as: admin, body: { external_registry_config: { proxy } } });

describe('mirror proxy SSRF', () => {
  it('refuses a proxy on an inside address when the config is created', async () => {
    expect((await create({ https_proxy: '[::1]:3128' })).statusCode).toBe(400);
    expect((await create({ http_proxy: 'http://169.254.169.254' })).statusCode).toBe(400);
    expect((await create({ http_proxy: 'http://proxy.internal:3128', https_proxy: 'http://user:pw@proxy.internal:3128' })).statusCode).toBe(201);
  });

  it('refuses one when it is changed, with or without a scheme or credentials; allow-listed names and ranges pass', async () => {
    for (const proxy of ['http://127.0.0.1:3128', 'http://user:secret@127.0.0.1:3128', '127.0.0.1:3128', 'http://[::ffff:169.254.169.254]/', 'http://10.1.0.1:3128', 'http://localhost:3128']) {
      const response = await change({ http_proxy: proxy });
      expect(response.statusCode, proxy).toBe(400);
      expect(response.json().error_message).toMatch(/http_proxy/);
    }
    expect((await change({ https_proxy: 'http://10.9.1.1:3128' })).statusCode).toBe(201);
    // Quay stores any string; one that is no URL reaches nothing and stays accepted.
    expect((await change({ https_proxy: 'proxy; rm -rf /' })).statusCode).toBe(201);
  });
});
