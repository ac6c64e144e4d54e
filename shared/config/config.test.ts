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
    expect(error.message).toContain('DEFAULT_TAG_EXPIRATION: must be a duration');
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
