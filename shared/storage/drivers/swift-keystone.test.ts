/**
 * Keystone v3 authentication of SwiftStorage. There is no Keystone server here, so the test runs a
 * small one that speaks the documented token API (POST /v3/auth/tokens: password method, project
 * scope, `X-Subject-Token`, `expires_at`, a service catalog) and hands out RadosGW v1 tokens, with
 * a catalog whose object-store endpoint is RadosGW's Swift API: the driver's requests after
 * authentication hit a real Swift API with the token Keystone "issued".
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RADOSGW_SWIFT } from '../../../test/servers/storage-endpoints.ts';
import { readSmall } from '../conformance/data.ts';
import { StorageError } from '../errors.ts';
import type { ObjectStore } from '../types.ts';
import { createObjectStore, loadStorageDrivers } from './index.ts';
import { catalogEndpoint, keystoneTokensUrl } from './swift-auth.ts';
import { swiftParamsSchema, swiftSettings } from './swift-params.ts';

await loadStorageDrivers(['SwiftStorage']);

/** A port of this branch's range (21500-21599). */
const KEYSTONE_PORT = 21501;
const PASSWORD = 'keystone-pa55word';

/** What the test Keystone does with the next token request. */
const keystone = {
  requests: [] as unknown[],
  /** How long issued tokens live. */
  lifetimeMs: 3_600_000,
  /** Tokens to hand out before real ones (RadosGW refuses them with 401). */
  bogusTokens: 0,
};

async function radosgwToken(): Promise<string> {
  const response = await fetch(RADOSGW_SWIFT.authUrl, { headers: { 'X-Auth-User': RADOSGW_SWIFT.user, 'X-Auth-Key': RADOSGW_SWIFT.key } });
  await response.arrayBuffer();
  return response.headers.get('x-auth-token')!;
}

function endpoint(iface: string, region: string, url: string): Record<string, string> {
  return { id: `${iface}-${region}`, interface: iface, region, region_id: region, url };
}

const catalog = [
  { type: 'identity', name: 'keystone', endpoints: [endpoint('public', 'RegionOne', `http://127.0.0.1:${KEYSTONE_PORT}/v3`)] },
  {
    type: 'object-store', name: 'swift', endpoints: [
      endpoint('public', 'RegionOne', RADOSGW_SWIFT.storageUrl),
      endpoint('internal', 'RegionOne', 'http://127.0.0.1:9/swift/v1'),
      endpoint('public', 'RegionTwo', 'http://127.0.0.1:9/region-two/v1'),
    ],
  },
];

interface PasswordAuth {
  auth?: { identity?: { methods?: string[]; password?: { user?: { name?: string; id?: string; password?: string; domain?: unknown } } }; scope?: unknown };
}

async function handleTokens(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
  const body = JSON.parse((await readSmall(request as never)).toString()) as PasswordAuth;
  keystone.requests.push(body);
  const user = body.auth?.identity?.password?.user;
  if (!body.auth?.identity?.methods?.includes('password') || user?.password !== PASSWORD) {
    response.writeHead(401, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ error: { code: 401, message: 'The request you have made requires authentication.', title: 'Unauthorized' } }));
    return;
  }
  const token = keystone.bogusTokens > 0 ? (keystone.bogusTokens--, 'AUTH_bogus-token') : await radosgwToken();
  const now = Date.now();
  response.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': token });
  response.end(JSON.stringify({
    token: {
      methods: ['password'], user: { id: 'u1', name: user.name ?? 'registry', domain: { id: 'default', name: 'Default' } },
      issued_at: new Date(now).toISOString(), expires_at: new Date(now + keystone.lifetimeMs).toISOString(),
      ...(body.auth.scope ? { project: { id: 'p1', name: 'quay', domain: { id: 'default', name: 'Default' } }, catalog } : {}),
    },
  }));
}

let server: http.Server;

beforeAll(async () => {
  server = http.createServer((request, response) => {
    if (request.method === 'POST' && request.url === '/v3/auth/tokens') {
      handleTokens(request, response).catch((error: unknown) => response.destroy(error as Error));
    } else {
      response.writeHead(404).end();
    }
  });
  server.listen(KEYSTONE_PORT, '127.0.0.1');
  await once(server, 'listening');
});

afterAll(async () => {
  server.close();
  await once(server, 'close');
});

const authUrl = (): string => `http://127.0.0.1:${(server.address() as AddressInfo).port}/v3`;

function v3Store(osOptions: Record<string, string>, password = PASSWORD): ObjectStore {
  return createObjectStore('SwiftStorage', {
    auth_url: authUrl(), auth_version: 3, swift_user: 'registry', swift_password: password, swift_container: RADOSGW_SWIFT.container,
    storage_path: 'keystone', temp_url_key: RADOSGW_SWIFT.tempUrlKey, os_options: osOptions,
  });
}

describe('SwiftStorage with Keystone v3', () => {
  it('sends the documented password request scoped to the project and uses the catalog endpoint', async () => {
    keystone.requests = [];
    const store = v3Store({ project_name: 'quay', user_domain_name: 'Default', region_name: 'RegionOne' });
    try {
      await store.put('k/object', Buffer.from('through keystone'));
      expect((await readSmall(await store.get('k/object'))).toString()).toBe('through keystone');
      const signed = await fetch(await store.signedReadUrl('k/object', 60));
      expect(await signed.text()).toBe('through keystone');
      await store.delete('k/object');
    } finally {
      await store.close();
    }
    expect(keystone.requests).toEqual([{
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'registry', domain: { name: 'Default' }, password: PASSWORD } } },
        scope: { project: { name: 'quay', domain: { name: 'Default' } } },
      },
    }]);
  });

  it('renews a token about to expire and one the object store refuses', async () => {
    keystone.requests = [];
    keystone.lifetimeMs = 60_000; // inside the 5-minute renewal margin: every operation renews
    const store = v3Store({ tenant_id: 'p1', user_domain_id: 'default', region_name: 'RegionOne' });
    try {
      await store.put('k/renewed', Buffer.from('x'));
      await store.stat('k/renewed');
      expect(keystone.requests.length).toBeGreaterThanOrEqual(2);
      keystone.lifetimeMs = 3_600_000;
      keystone.requests = [];
      keystone.bogusTokens = 1;
      const fresh = v3Store({ tenant_id: 'p1', user_domain_id: 'default', region_name: 'RegionOne' });
      expect((await fresh.stat('k/renewed')).size).toBe(1); // 401 with the bogus token, then a new one
      expect(keystone.requests).toHaveLength(2);
      expect(keystone.requests[0]).toMatchObject({ auth: { scope: { project: { id: 'p1' } }, identity: { password: { user: { domain: { id: 'default' } } } } } });
      await fresh.delete('k/renewed');
      await fresh.close();
    } finally {
      keystone.lifetimeMs = 3_600_000;
      keystone.bogusTokens = 0;
      await store.close();
    }
  });

  it('reports a refused password and an ambiguous or missing endpoint clearly, never echoing the password', async () => {
    const refused = v3Store({ project_name: 'quay', region_name: 'RegionOne' }, 'wrong-password');
    const error = await refused.ping().then(() => undefined, (e: unknown) => e as Error);
    expect(error).toBeInstanceOf(StorageError);
    expect(error?.message).toContain('answered HTTP 401 (wrong user or password?)');
    expect(error?.message).not.toContain('wrong-password');
    await refused.close();
    const ambiguous = v3Store({ project_name: 'quay' });
    await expect(ambiguous.ping()).rejects.toThrow('the Keystone catalog has 2 endpoints for service type object-store, interface public: set os_options.region_name');
    await ambiguous.close();
    const nowhere = v3Store({ project_name: 'quay', region_name: 'RegionThree' });
    await expect(nowhere.ping()).rejects.toThrow('no endpoint for service type object-store, interface public, region RegionThree (regions: RegionOne, RegionTwo)');
    await nowhere.close();
  });
});

describe('Swift settings', () => {
  it('picks the catalog endpoint by interface and region', () => {
    const auth = { serviceType: 'object-store', region: 'RegionOne' };
    expect(catalogEndpoint(catalog, { ...auth, interface: 'internal' })).toBe('http://127.0.0.1:9/swift/v1');
    expect(catalogEndpoint(catalog, { ...auth, interface: 'public' })).toBe(RADOSGW_SWIFT.storageUrl);
    expect(() => catalogEndpoint(catalog, { ...auth, interface: 'admin' })).toThrow('no endpoint for service type object-store, interface admin');
  });

  it('finds the token URL with or without /v3 in auth_url', () => {
    expect(keystoneTokensUrl('https://keystone:5000').href).toBe('https://keystone:5000/v3/auth/tokens');
    expect(keystoneTokensUrl('https://keystone:5000/v3/').href).toBe('https://keystone:5000/v3/auth/tokens');
    expect(keystoneTokensUrl('https://cloud/identity/v3/auth/tokens').href).toBe('https://cloud/identity/v3/auth/tokens');
  });

  it('maps Quay\'s os_options (and the OpenShift names behind them) onto the v3 request', () => {
    const params = (os: Record<string, string>, extra: Record<string, unknown> = {}) => swiftParamsSchema.parse({
      swift_container: 'c', auth_url: 'https://keystone/v3', auth_version: '3', os_options: os, ...extra,
    });
    const env = { REGISTRY_STORAGE_SWIFT_USER: 'env-user', REGISTRY_STORAGE_SWIFT_PASSWORD: 'env-pass' };
    const byName = swiftSettings(params({ tenant_name: 'quay', user_domain_name: 'corp', endpoint_type: 'internalURL' }), env);
    expect(byName.auth).toEqual({
      version: '3', authUrl: 'https://keystone/v3', user: { name: 'env-user', domain: { name: 'corp' } }, password: 'env-pass',
      project: { name: 'quay', domain: { name: 'corp' } }, region: undefined, serviceType: 'object-store', interface: 'internal',
    });
    const byId = swiftSettings(params({ project_id: 'p1', user_id: 'u1', region_name: 'r' }, { swift_password: 'p' }), {});
    expect(byId.auth).toMatchObject({ user: { id: 'u1' }, project: { id: 'p1' }, region: 'r', interface: 'public' });
    expect(swiftSettings(params({ project_name: 'quay' }), env).auth).toMatchObject({ user: { domain: { id: 'default' } }, project: { domain: { id: 'default' } } });
    expect(() => swiftSettings(params({ project_name: 'q', endpoint_type: 'private' }), env)).toThrow('endpoint_type must be public, internal or admin');
    const v1 = swiftSettings(swiftParamsSchema.parse({ swift_container: 'c', auth_url: 'http://rgw/auth/1.0' }), env);
    expect(v1).toMatchObject({ auth: { version: '1', user: 'env-user', key: 'env-pass' }, largeObject: 'slo', segmentBytes: 200_000_000 });
  });
});
