/**
 * Quay's config API on the front end: POST /api/v1/config/validate and GET /api/v1/config, for a
 * superuser or the config tool's `quayconfig:<QUAYFLEET_CONFIG_PASSWORD>`; 401/403 otherwise; bad
 * bodies answer 400, never 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const PASSWORD = 'a long enough password';
const CONFIG_PASSWORD = 'config-tool-secret';
let t: TestRegistry;

beforeAll(async () => {
  t = await startTestRegistry({
    label: 'apiconfig',
    config: { DB_URI: 'postgresql://quay:dbpassword@db.example.com/quay', MAIL_PASSWORD: 'mailpassword', SECRET_KEY: 'the-secret-key' },
    env: { QUAYFLEET_CONFIG_PASSWORD: CONFIG_PASSWORD },
  });
  await t.createUser('root', PASSWORD, { superuser: true });
  await t.createUser('alice', PASSWORD);
}, 60_000);
afterAll(async () => { await t?.close(); });

const configTool = (password = CONFIG_PASSWORD) => ({ authorization: basicAuth('quayconfig', password) });
const validate = (body: unknown, headers: Record<string, string> = configTool()) => t.app.inject({
  method: 'POST', url: '/api/v1/config/validate', headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify(body),
});

describe('POST /api/v1/config/validate', () => {
  it("answers an empty config with Quay's grouped errors (CFG-11)", async () => {
    const response = await validate({ 'config.yaml': {} });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual([
      { FieldGroup: 'Database', Tags: ['DB_URI'], Message: 'DB_URI is required.' },
      { FieldGroup: 'DistributedStorage', Tags: ['DISTRIBUTED_STORAGE_CONFIG'], Message: 'DISTRIBUTED_STORAGE_CONFIG must contain at least one storage location.' },
      { FieldGroup: 'HostSettings', Tags: ['SERVER_HOSTNAME'], Message: 'SERVER_HOSTNAME is required' },
      { FieldGroup: 'HostSettings', Tags: ['SERVER_HOSTNAME'], Message: 'SERVER_HOSTNAME must be of type Hostname' },
      { FieldGroup: 'Redis', Tags: ['BUILDLOGS_REDIS'], Message: 'BUILDLOGS_REDIS is required' },
    ]);
  });

  it('answers [] for a valid config, a superuser may ask too, and the spec form is validated the same way', async () => {
    const valid = {
      SERVER_HOSTNAME: 'quay.example.com', DB_URI: 'postgresql://q@db/quay', BUILDLOGS_REDIS: { host: 'redis' },
      spec: { managementState: 'Managed', storage: { pvc: { claim: 'image-registry-storage' } } },
    };
    expect((await validate({ 'config.yaml': valid })).json()).toEqual([]);
    const asRoot = await t.api('POST', '/config/validate', { as: ['root', PASSWORD], body: { 'config.yaml': valid } });
    expect([asRoot.statusCode, asRoot.json()]).toEqual([200, []]);
    const wrong = await validate({ 'config.yaml': { ...valid, spec: { replicas: 3, storage: { emptyDir: {} } } } });
    expect(wrong.json()).toEqual([{ FieldGroup: 'DistributedStorage', Tags: ['spec.replicas'], Message: expect.stringMatching(/^spec\.storage\.emptyDir cannot be used with more than one replica/) }]);
  });

  it('refuses anonymous callers (401), wrong config secrets (401), users who are not superusers (403), and bad bodies (400)', async () => {
    expect((await validate({ 'config.yaml': {} }, {})).statusCode).toBe(401);
    expect((await validate({ 'config.yaml': {} }, configTool('wrong-password'))).statusCode).toBe(401);
    expect((await t.api('POST', '/config/validate', { as: ['alice', PASSWORD], body: { 'config.yaml': {} } })).statusCode).toBe(403);
    for (const body of [[], { config: {} }, { 'config.yaml': 'DB_URI: x' }, { 'config.yaml': [1] }]) {
      const response = await validate(body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
    }
    const notJson = await t.app.inject({ method: 'POST', url: '/api/v1/config/validate', headers: { ...configTool(), 'content-type': 'application/json' }, payload: '{' });
    expect(notJson.statusCode).toBe(400);
  });
});

describe('POST /api/v1/config/validate?mode=online, ?warnings=true', () => {
  it('connects in online mode (Quay\'s config tool\'s), reports unused certs, and returns warnings beside errors when asked', async () => {
    const config = {
      SERVER_HOSTNAME: 'quay.example.com', DB_URI: 'postgresql://quay:wrong@127.0.0.1:22632/quay', BUILDLOGS_REDIS: { host: '127.0.0.1', port: 22632 },
      spec: { storage: { s3: { bucket: 'qf-api-online', keyID: 'unused-key', regionEndpoint: 'http://127.0.0.1:22632' } } },
    };
    const env = { REGISTRY_STORAGE_S3_ACCESSKEY: 'AK', REGISTRY_STORAGE_S3_SECRETKEY: 'SK' };
    Object.assign(process.env, env);
    expect((await validate({ 'config.yaml': config })).json()).toEqual([]);
    const online = await t.app.inject({
      method: 'POST', url: '/api/v1/config/validate?mode=online&warnings=true', headers: { ...configTool(), 'content-type': 'application/json' },
      payload: JSON.stringify({ 'config.yaml': config, certs: { 'ssl.key': 'eA==' } }),
    });
    for (const key of Object.keys(env)) delete process.env[key];
    expect(online.statusCode).toBe(200);
    const body = online.json() as { errors: { FieldGroup: string; Message: string }[]; warnings: { FieldGroup: string; Message: string }[] };
    expect(body.errors.map((e) => [e.FieldGroup, e.Message.replace(/ Error: .*/, '')])).toEqual([
      ['Database', 'Could not connect to database.'],
      ['DistributedStorage', 'Could not connect to storage default.'],
      ['Redis', 'Could not connect to Redis with values provided in BUILDLOGS_REDIS (redis://127.0.0.1:22632).'],
    ]);
    expect(body.warnings.map((w) => w.Message)).toEqual([
      'spec.storage.s3.keyID is ignored because spec.storage.s3.encrypt is false',
      expect.stringMatching(/^certs: ssl\.key is not used by quayfleet/),
    ]);
    const bad = await t.app.inject({ method: 'POST', url: '/api/v1/config/validate?mode=sometimes', headers: { ...configTool(), 'content-type': 'application/json' }, payload: JSON.stringify({ 'config.yaml': {} }) });
    expect(bad.statusCode).toBe(400);
  });
});

describe('GET /api/v1/config', () => {
  it("answers the running config with Quay's defaults and every secret redacted", async () => {
    const response = await t.app.inject({ method: 'GET', url: '/api/v1/config', headers: configTool() });
    expect(response.statusCode).toBe(200);
    const config = response.json()['config.yaml'] as Record<string, unknown>;
    expect(config).toMatchObject({
      AUTHENTICATION_TYPE: 'Database', AVATAR_KIND: 'local', DEFAULT_TAG_EXPIRATION: '2w', FEATURE_ANONYMOUS_ACCESS: true,
      FEATURE_APP_SPECIFIC_TOKENS: true, FEATURE_ACTION_LOG_ROTATION: false, EXTERNAL_TLS_TERMINATION: false,
      DB_CONNECTION_ARGS: { autorollback: true, threadlocals: true },
      DB_URI: 'postgresql://quay:<redacted>@db.example.com/quay', MAIL_PASSWORD: '<redacted>', SECRET_KEY: '<redacted>',
    });
    expect(response.body).not.toMatch(/dbpassword|mailpassword|the-secret-key/);
    expect((await t.api('GET', '/config', { as: ['alice', PASSWORD] })).statusCode).toBe(403);
    expect((await t.api('GET', '/config', { as: ['root', PASSWORD] })).statusCode).toBe(200);
  });
});
