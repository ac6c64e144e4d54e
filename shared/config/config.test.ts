import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from './index.ts';

const fixtures = path.resolve(import.meta.dirname, '../../test/fixtures/config');

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('uses built-in defaults when there is no config file', () => {
    const config = loadConfig({}, fs.mkdtempSync(path.join(os.tmpdir(), 'qf-config-')));
    expect(config.source).toBe('built-in defaults');
    expect(config.quay.GARBAGE_COLLECTION_FREQUENCY).toBe(30);
    expect(config.quay.PUSH_TEMP_TAG_EXPIRATION_SEC).toBe(3600);
    expect(config.quay.QUOTA_TOTAL_DELAY_SECONDS).toBe(1800);
    expect(config.defaultTagExpirationSeconds).toBe(1_209_600);
    expect(config.tagExpirationOptionsSeconds).toEqual([0, 86_400, 604_800, 1_209_600, 2_419_200]);
    expect(config.quay.FEATURE_GARBAGE_COLLECTION).toBe(true);
    expect(config.quay.FEATURE_REPO_MIRROR).toBe(false);
    expect(config.quay.DISTRIBUTED_STORAGE_PREFERENCE).toEqual(['default']);
    expect(config.quay.DISTRIBUTED_STORAGE_CONFIG.default?.[0]).toBe('LocalStorage');
    expect(config.httpPort).toBe(8080);
    expect(config.metricsPort).toBe(9091);
    expect(config.dbUri).toBeUndefined();
  });

  it("parses Quay's S3 example and takes Redis from BUILDLOGS_REDIS", () => {
    const config = loadConfig({ QUAYFLEET_CONFIG: path.join(fixtures, 'quay-s3.yaml') });
    expect(config.quay.SERVER_HOSTNAME).toBe('quay-server.example.com');
    expect(config.dbUri).toBe('postgresql://quayuser:quaypass@quay-server.example.com:5432/quay');
    expect(config.redisUrl).toBe('redis://:strongpassword@quay-server.example.com:6379');
    expect(config.quay.SUPER_USERS).toEqual(['quayadmin']);
    // Unknown Quay keys are accepted and ignored.
    expect((config.quay as Record<string, unknown>).FEATURE_BUILD_SUPPORT).toBe(false);
  });

  it('parses the geo-replication example with numeric strings and the per-pod override', () => {
    const config = loadConfig({
      QUAYFLEET_CONFIG: path.join(fixtures, 'quay-georeplication.yaml'),
      QUAY_DISTRIBUTED_STORAGE_PREFERENCE: 'eustorage',
      REDIS_URL: 'redis://127.0.0.1:6379',
      DB_URI: 'postgresql://override@localhost/quay',
      QUAYFLEET_HTTP_PORT: '8081',
    });
    expect(config.quay.GARBAGE_COLLECTION_FREQUENCY).toBe(60);
    expect(config.quay.PUSH_TEMP_TAG_EXPIRATION_SEC).toBe(7200);
    expect(config.quay.DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS).toEqual(['usstorage', 'eustorage']);
    expect(config.storagePreferenceOverride).toBe('eustorage');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.dbUri).toBe('postgresql://override@localhost/quay');
    expect(config.httpPort).toBe(8081);
    expect(config.quay.DEFAULT_SYSTEM_REJECT_QUOTA_BYTES).toBe(102_400_000);
  });

  it('reports every error at once, each with its key', () => {
    const error = errorOf(() => loadConfig({ QUAYFLEET_CONFIG: path.join(fixtures, 'bad.yaml'), QUAYFLEET_HTTP_PORT: 'eighty' }));
    const keys = error.issues.map((i) => i.key);
    expect(keys).toEqual(expect.arrayContaining([
      'FEATURE_GARBAGE_COLLECTION', 'GARBAGE_COLLECTION_FREQUENCY', 'DEFAULT_TAG_EXPIRATION',
      'TAG_EXPIRATION_OPTIONS.1', 'SUPER_USERS', 'QUAYFLEET_HTTP_PORT',
    ]));
    expect(error.message).toContain('DEFAULT_TAG_EXPIRATION: "fortnight" is not valid; expected a duration');
  });

  // Every kind of key names itself, the value as written, and what it expects; never zod's bare
  // "Invalid input".
  it.each([
    ['seconds', { GARBAGE_COLLECTION_FREQUENCY: 'abc' }, {}, 'GARBAGE_COLLECTION_FREQUENCY: "abc" is not valid; expected a number of seconds, e.g. 30'],
    ['seconds given a boolean', { QUOTA_TOTAL_DELAY_SECONDS: true }, {}, 'QUOTA_TOTAL_DELAY_SECONDS: true is not valid; expected a number of seconds, e.g. 30'],
    ['duration', { DEFAULT_TAG_EXPIRATION: 'forever' }, {}, 'DEFAULT_TAG_EXPIRATION: "forever" is not valid; expected a duration: a number and one unit of s, m, h, d or w, e.g. "30s", "1d" or "2w"'],
    ['duration in a list', { TAG_EXPIRATION_OPTIONS: ['1d', 7] }, {}, 'TAG_EXPIRATION_OPTIONS.1: 7 is not valid; expected a duration'],
    ['boolean', { FEATURE_GARBAGE_COLLECTION: 'yes please' }, {}, 'FEATURE_GARBAGE_COLLECTION: "yes please" is not valid; expected true or false'],
    ['number', { MAXIMUM_MANIFEST_SIZE_BYTES: 'big' }, {}, 'MAXIMUM_MANIFEST_SIZE_BYTES: "big" is not valid; expected a number'],
    ['number out of range', { MAXIMUM_MANIFEST_SIZE_BYTES: 0 }, {}, 'MAXIMUM_MANIFEST_SIZE_BYTES: 0 is not valid; expected a number more than 0'],
    ['whole number', { DB_CONNECTION_ARGS: { max_connections: 1.5 } }, {}, 'DB_CONNECTION_ARGS.max_connections: 1.5 is not valid; expected a whole number'],
    ['enum', { PREFERRED_URL_SCHEME: 'ftp' }, {}, 'PREFERRED_URL_SCHEME: "ftp" is not valid; expected one of "http", "https"'],
    ['list', { SUPER_USERS: 'admin' }, {}, 'SUPER_USERS: "admin" is not valid; expected a list'],
    ['mapping', { BUILDLOGS_REDIS: 'redis:6379' }, {}, 'BUILDLOGS_REDIS: "redis:6379" is not valid; expected a mapping of keys to values'],
    ['missing field', { BUILDLOGS_REDIS: { port: 6379 } }, {}, 'BUILDLOGS_REDIS.host: (missing) is not valid; expected a string'],
    ['redis port', { BUILDLOGS_REDIS: { host: 'r', port: 'six' } }, {}, 'BUILDLOGS_REDIS.port: "six" is not valid; expected a port number, e.g. 6379'],
    ['Postgres URL in config.yaml', { DB_URI: 'mysql+pymysql://quay@db/quay' }, {}, 'DB_URI: "mysql+pymysql://quay@db/quay" is not valid; expected a postgresql:// URL, e.g. postgresql://quay:quay@localhost:5432/quay'],
    ['Redis URL in the environment', {}, { REDIS_URL: 'localhost:6379' }, 'REDIS_URL: "localhost:6379" is not valid; expected redis://HOST:PORT, redis+cluster://HOST:PORT,HOST:PORT or redis+sentinel://HOST:PORT,HOST:PORT/MASTER (rediss for TLS)'],
    ['port in the environment', {}, { QUAYFLEET_HTTP_PORT: 'eighty' }, 'QUAYFLEET_HTTP_PORT: "eighty" is not valid; expected a port number from 1 to 65535, e.g. 8080'],
    ['port out of range', {}, { QUAYFLEET_METRICS_PORT: '70000' }, 'QUAYFLEET_METRICS_PORT: 70000 is not valid; expected a port number from 0 to 65535, e.g. 9091'],
  ])('names the key, the value and what is expected: %s', (_kind, raw, env, line) => {
    const error = errorOf(() => parseConfig(raw, env as NodeJS.ProcessEnv));
    expect(error.message).toContain(`  ${line}`);
    expect(error.message).not.toContain('Invalid input');
  });

  it('shortens a long wrong value', () => {
    const error = errorOf(() => parseConfig({ SUPER_USERS: 'x'.repeat(500) }));
    expect(error.issues[0]!.message.length).toBeLessThan(140);
  });

  it('refuses storage preferences that name unknown locations, including the per-pod override', () => {
    const error = errorOf(() => parseConfig(
      { DISTRIBUTED_STORAGE_CONFIG: { a: ['LocalStorage', { storage_path: '/x' }] }, DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: ['b'] },
      { QUAY_DISTRIBUTED_STORAGE_PREFERENCE: 'c' },
    ));
    expect(error.issues.map((i) => i.key).sort()).toEqual(['DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS', 'QUAY_DISTRIBUTED_STORAGE_PREFERENCE']);
    const empty = errorOf(() => parseConfig({ DISTRIBUTED_STORAGE_CONFIG: {} }));
    expect(empty.issues[0]?.message).toBe('DISTRIBUTED_STORAGE_CONFIG must contain at least one storage location.');
  });

  it('reports a missing explicit config file and a file that is not YAML', () => {
    expect(errorOf(() => loadConfig({ QUAYFLEET_CONFIG: '/nonexistent/config.yaml' })).issues[0]?.key).toBe('QUAYFLEET_CONFIG');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-config-'));
    fs.writeFileSync(path.join(dir, 'c.yaml'), 'FOO: [unclosed');
    expect(errorOf(() => loadConfig({ QUAYFLEET_CONFIG: path.join(dir, 'c.yaml') })).issues[0]?.key).toBe('(file)');
    fs.writeFileSync(path.join(dir, 'list.yaml'), '- a\n- b\n');
    expect(errorOf(() => loadConfig({ QUAYFLEET_CONFIG: path.join(dir, 'list.yaml') })).issues[0]?.message).toContain('mapping');
  });
});
