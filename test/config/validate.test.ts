/**
 * Quay's config validation (CFG-11) and the OpenShift spec.storage mapping (reference §11.2), as
 * `quayfleet config validate`, `POST /api/v1/config/validate` and every process at boot run them.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { storageParamIssues } from '../../shared/storage/drivers/index.ts';
import { parseConfig, redactConfig, validateQuayConfig, type ValidationError } from '../../shared/config/index.ts';
import { effectiveConfig } from '../../shared/config/effective.ts';
import { processIssues } from '../../bin/boot.ts';

const VALID = {
  SERVER_HOSTNAME: 'quay.example.com',
  DB_URI: 'postgresql://quay:secretpw@db.example.com:5432/quay',
  BUILDLOGS_REDIS: { host: 'redis.example.com', port: 6379, password: 'redispw' },
  DISTRIBUTED_STORAGE_CONFIG: { default: ['RadosGWStorage', { hostname: 'rgw.example.com', port: '443', is_secure: true, access_key: 'AK', secret_key: 'SK', bucket_name: 'quay', storage_path: '/datastorage/registry' }] },
  DISTRIBUTED_STORAGE_PREFERENCE: ['default'],
};
const validate = (raw: unknown, env: NodeJS.ProcessEnv = {}) => validateQuayConfig(raw, env, storageParamIssues);
const messages = (errors: ValidationError[]) => errors.map((e) => e.Message);
const withSpec = (spec: unknown, extra: Record<string, unknown> = {}) => {
  const { DISTRIBUTED_STORAGE_CONFIG: _, DISTRIBUTED_STORAGE_PREFERENCE: __, ...rest } = VALID;
  return { ...rest, spec, ...extra };
};
/** The location spec.storage maps to, from a config that must be valid. */
function mapped(spec: unknown, env: NodeJS.ProcessEnv = {}, extra: Record<string, unknown> = {}): [string, Record<string, unknown>] {
  const report = validate(withSpec(spec, extra), env);
  expect(report.errors).toEqual([]);
  return report.config!.quay.DISTRIBUTED_STORAGE_CONFIG.default!;
}

describe("Quay's config validation", () => {
  it("answers an empty config with Quay's five grouped errors, in Quay's order and words", () => {
    expect(validate({}).errors).toEqual([
      { FieldGroup: 'Database', Tags: ['DB_URI'], Message: 'DB_URI is required.' },
      { FieldGroup: 'DistributedStorage', Tags: ['DISTRIBUTED_STORAGE_CONFIG'], Message: 'DISTRIBUTED_STORAGE_CONFIG must contain at least one storage location.' },
      { FieldGroup: 'HostSettings', Tags: ['SERVER_HOSTNAME'], Message: 'SERVER_HOSTNAME is required' },
      { FieldGroup: 'HostSettings', Tags: ['SERVER_HOSTNAME'], Message: 'SERVER_HOSTNAME must be of type Hostname' },
      { FieldGroup: 'Redis', Tags: ['BUILDLOGS_REDIS'], Message: 'BUILDLOGS_REDIS is required' },
    ]);
    expect(validate(null).errors).toHaveLength(5);
  });

  it('answers [] for a complete config, and the environment supplies DB_URI and Redis as in a pod', () => {
    expect(validate(VALID).errors).toEqual([]);
    const { DB_URI: _, BUILDLOGS_REDIS: __, ...withoutConnections } = VALID;
    expect(messages(validate(withoutConnections).errors)).toEqual(['DB_URI is required.', 'BUILDLOGS_REDIS is required']);
    expect(validate(withoutConnections, { DB_URI: 'postgresql://q@db/quay', REDIS_URL: 'redis://redis:6379' }).errors).toEqual([]);
  });

  it('lists every problem of a partial, wrongly typed config in one run', () => {
    const errors = validate({
      SERVER_HOSTNAME: 'https://quay.example.com/', FEATURE_GARBAGE_COLLECTION: 'yes', GARBAGE_COLLECTION_FREQUENCY: 'often',
      DEFAULT_TAG_EXPIRATION: '2 weeks', DISTRIBUTED_STORAGE_CONFIG: {}, DB_URI: 'mysql://quay@db/quay',
      BUILDLOGS_REDIS: { port: 6379 },
    }).errors;
    expect(errors.map((e) => [e.FieldGroup, e.Tags[0]])).toEqual([
      ['Database', 'DB_URI'],
      ['DistributedStorage', 'DISTRIBUTED_STORAGE_CONFIG'],
      ['GarbageCollection', 'FEATURE_GARBAGE_COLLECTION'],
      ['GarbageCollection', 'GARBAGE_COLLECTION_FREQUENCY'],
      ['HostSettings', 'SERVER_HOSTNAME'],
      ['Redis', 'BUILDLOGS_REDIS.host'],
      ['TimeMachine', 'DEFAULT_TAG_EXPIRATION'],
    ]);
    expect(messages(errors)).toContain('FEATURE_GARBAGE_COLLECTION: "yes" is not valid; expected true or false');
    expect(messages(errors)).toContain('SERVER_HOSTNAME must be of type Hostname');
    expect(messages(errors)).toContain('DISTRIBUTED_STORAGE_CONFIG must contain at least one storage location.');
  });

  it("checks each storage location's driver and parameters without contacting it", () => {
    const errors = validate({ ...VALID, DISTRIBUTED_STORAGE_CONFIG: { default: ['S3Storage', { storage_path: '/r' }], eu: ['FloppyStorage', {}] }, DISTRIBUTED_STORAGE_PREFERENCE: ['default'] }).errors;
    expect(messages(errors)).toEqual([
      'DISTRIBUTED_STORAGE_CONFIG.default: missing required parameter "s3_bucket"',
      expect.stringMatching(/^DISTRIBUTED_STORAGE_CONFIG\.eu: unknown storage driver FloppyStorage \(known: LocalStorage, S3Storage/),
    ]);
  });

  it('keeps the warnings when there are errors: one run lists both', () => {
    const report = validate(withSpec({ storage: { s3: { bucket: 'b', keyID: 'k', regionEndpoint: 'https://rgw.example.com' } } }, { FEATURE_GARBAGE_COLLECTION: 'yes' }));
    expect(messages(report.errors)).toEqual([
      expect.stringMatching(/^spec\.storage\.s3\.regionEndpoint https:\/\/rgw\.example\.com has no port/),
      'FEATURE_GARBAGE_COLLECTION: "yes" is not valid; expected true or false',
    ]);
    expect(messages(report.warnings)).toEqual(['spec.storage.s3.keyID is ignored because spec.storage.s3.encrypt is false']);
  });

  it('`quayfleet config validate` prints the same list and exits 1, or 0 when valid', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-validate-'));
    const cli = path.resolve(import.meta.dirname, '../../bin/quayfleet.js');
    const env = { PATH: process.env.PATH! };
    fs.writeFileSync(path.join(dir, 'empty.yaml'), '');
    const empty = spawnSync(process.execPath, [cli, 'config', 'validate', '--json', path.join(dir, 'empty.yaml')], { env, encoding: 'utf8' });
    expect(empty.status).toBe(1);
    expect(JSON.parse(empty.stdout)).toEqual(validate({}).errors);
    fs.writeFileSync(path.join(dir, 'valid.yaml'), JSON.stringify(VALID));
    const valid = spawnSync(process.execPath, [cli, 'config', 'validate', path.join(dir, 'valid.yaml')], { env, encoding: 'utf8' });
    expect([valid.status, valid.stdout]).toEqual([0, 'configuration is valid\n']);
    const missing = spawnSync(process.execPath, [cli, 'config', 'validate', path.join(dir, 'nope.yaml')], { env, encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('ENOENT');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('OpenShift spec.storage', () => {
  it('s3: a generated bucket under Managed, the same for every pod, created by the fleet; path style by default', () => {
    const [driver, params] = mapped({ storage: { s3: { region: 'eu-west-1' } } });
    expect(driver).toBe('S3Storage');
    expect(params).toMatchObject({ s3_region: 'eu-west-1', create_bucket: true });
    expect(params.s3_bucket).toMatch(/^quayfleet-image-registry-eu-west-1-[0-9a-f]{12}$/);
    expect(params).not.toHaveProperty('virtual_hosted_style');
    expect(mapped({ storage: { s3: { region: 'eu-west-1' } } })[1].s3_bucket).toBe(params.s3_bucket);
    expect(mapped({ storage: { s3: { region: 'eu-west-1' } } }, {}, { SERVER_HOSTNAME: 'other.example.com' })[1].s3_bucket).not.toBe(params.s3_bucket);
  });

  it('s3: Unmanaged needs the bucket and never creates one', () => {
    expect(messages(validate(withSpec({ storage: { managementState: 'Unmanaged', s3: {} } })).errors))
      .toEqual(['spec.storage.s3.bucket is required when spec.storage.managementState is Unmanaged']);
    expect(mapped({ storage: { managementState: 'Unmanaged', s3: { bucket: 'b' } } })[1]).not.toHaveProperty('create_bucket');
  });

  it('s3: a regionEndpoint without an explicit port is a clear error (Rados Gateway); AWS endpoints are exempt', () => {
    const errors = validate(withSpec({ storage: { s3: { bucket: 'b', regionEndpoint: 'https://rgw.apps.example.com' } } })).errors;
    expect(errors).toEqual([{
      FieldGroup: 'DistributedStorage', Tags: ['spec.storage.s3.regionEndpoint'],
      Message: 'spec.storage.s3.regionEndpoint https://rgw.apps.example.com has no port: a Rados Gateway or other S3-compatible endpoint must give it explicitly, e.g. https://rgw.apps.example.com:443',
    }]);
    expect(mapped({ storage: { s3: { bucket: 'b', regionEndpoint: 'https://rgw.apps.example.com:443/' } } })[1].endpoint_url).toBe('https://rgw.apps.example.com:443');
    expect(mapped({ storage: { s3: { bucket: 'b', regionEndpoint: 'https://s3.eu-west-1.amazonaws.com' } } })[1].endpoint_url).toBe('https://s3.eu-west-1.amazonaws.com');
    expect(messages(validate(withSpec({ storage: { s3: { regionEndpoint: 'rgw:8080' } } })).errors)[0]).toMatch(/^spec\.storage\.s3\.regionEndpoint: "rgw:8080" is not valid; expected an http:\/\/ or https:\/\/ URL/);
  });

  it('s3: encrypt with keyID is SSE-KMS, encrypt alone SSE-S3, and keyID without encrypt is ignored with a warning', () => {
    expect(mapped({ storage: { s3: { bucket: 'b', encrypt: true, keyID: 'arn:aws:kms:k' } } })[1]).toMatchObject({ server_side_encryption: 'aws:kms', sse_kms_key_id: 'arn:aws:kms:k' });
    expect(mapped({ storage: { s3: { bucket: 'b', encrypt: true } } })[1]).toMatchObject({ server_side_encryption: 'AES256' });
    const report = validate(withSpec({ storage: { s3: { bucket: 'b', keyID: 'arn:aws:kms:k' } } }));
    expect(report.config!.quay.DISTRIBUTED_STORAGE_CONFIG.default![1]).not.toHaveProperty('sse_kms_key_id');
    expect(messages(report.warnings)).toEqual(['spec.storage.s3.keyID is ignored because spec.storage.s3.encrypt is false']);
  });

  it('s3: REGISTRY_STORAGE_S3_* credentials override the ambient AWS ones; trustedCA must be mounted', () => {
    const env = { REGISTRY_STORAGE_S3_ACCESSKEY: 'explicit', REGISTRY_STORAGE_S3_SECRETKEY: 'explicit-secret', AWS_ACCESS_KEY_ID: 'ambient', AWS_SECRET_ACCESS_KEY: 'ambient-secret' };
    expect(mapped({ storage: { s3: { bucket: 'b' } } }, env)[1]).toMatchObject({ s3_access_key: 'explicit', s3_secret_key: 'explicit-secret' });
    // Without them the location carries no keys and the driver falls back to AWS_* and the SDK chain.
    expect(mapped({ storage: { s3: { bucket: 'b' } } }, { AWS_ACCESS_KEY_ID: 'ambient' })[1]).not.toHaveProperty('s3_access_key');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-ca-'));
    expect(messages(validate(withSpec({ storage: { s3: { bucket: 'b', trustedCA: { name: 'image-registry-s3-bundle' } } } }), { QUAYFLEET_TRUSTED_CA_DIR: dir }).errors))
      .toEqual([`spec.storage.s3.trustedCA: the config map image-registry-s3-bundle is not mounted: ${dir}/image-registry-s3-bundle/ca-bundle.crt does not exist (mount its ca-bundle.crt under QUAYFLEET_TRUSTED_CA_DIR/image-registry-s3-bundle/)`]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('trustedCA: applied to swift (ca_cert_path, must be mounted), refused on gcs and azure with what to do instead', () => {
    const caDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-trusted-'));
    fs.mkdirSync(path.join(caDir, 'bundle'));
    fs.writeFileSync(path.join(caDir, 'bundle', 'ca-bundle.crt'), '');
    const swiftEnv = { REGISTRY_STORAGE_SWIFT_USER: 'u', REGISTRY_STORAGE_SWIFT_PASSWORD: 'p', QUAYFLEET_TRUSTED_CA_DIR: caDir };
    const swift = { authURL: 'https://keystone.example.com:5000/v3', container: 'registry', trustedCA: { name: 'bundle' } };
    expect(mapped({ storage: { swift } }, swiftEnv)[1].ca_cert_path).toBe(path.join(caDir, 'bundle', 'ca-bundle.crt'));
    expect(messages(validate(withSpec({ storage: { swift: { ...swift, trustedCA: { name: 'absent' } } } }), swiftEnv).errors))
      .toEqual([expect.stringMatching(/^spec\.storage\.swift\.trustedCA: the config map absent is not mounted/)]);
    const gcs = validate(withSpec({ storage: { gcs: { bucket: 'b', trustedCA: { name: 'bundle' } } } }), { REGISTRY_STORAGE_GCS_KEYFILE: '{}', QUAYFLEET_TRUSTED_CA_DIR: caDir });
    expect(gcs.errors).toEqual([{ FieldGroup: 'DistributedStorage', Tags: ['spec.storage.gcs.trustedCA'], Message: expect.stringMatching(/^spec\.storage\.gcs\.trustedCA cannot be applied: the Google Cloud Storage client takes no CA bundle of its own .*NODE_EXTRA_CA_CERTS=.*bundle\/ca-bundle\.crt/) }]);
    const azure = validate(withSpec({ storage: { azure: { accountName: 'acct', container: 'c', trustedCA: { name: 'bundle' } } } }), { REGISTRY_STORAGE_AZURE_ACCOUNTKEY: 'a2V5' });
    expect(messages(azure.errors)).toEqual([expect.stringMatching(/^spec\.storage\.azure\.trustedCA cannot be applied: the Azure Blob client/)]);
    fs.rmSync(caDir, { recursive: true, force: true });
  });

  it('gcs: the key from REGISTRY_STORAGE_GCS_KEYFILE over GOOGLE_APPLICATION_CREDENTIALS; projectID, region and keyID for the bucket it creates', () => {
    const [driver, params] = mapped({ storage: { gcs: { projectID: 'proj', region: 'europe-west1', keyID: 'projects/p/locations/l/keyRings/r/cryptoKeys/k' } } },
      { REGISTRY_STORAGE_GCS_KEYFILE: '{"k":1}', GOOGLE_APPLICATION_CREDENTIALS: '/ambient.json' });
    expect(driver).toBe('GoogleCloudStorage');
    expect(params).toMatchObject({ keyfile: '{"k":1}', project_id: 'proj', location: 'europe-west1', kms_key_name: 'projects/p/locations/l/keyRings/r/cryptoKeys/k', create_bucket: true });
    expect(params.bucket_name).toMatch(/^quayfleet-image-registry-europe-west1-[0-9a-f]{12}$/);
    expect(mapped({ storage: { gcs: { bucket: 'b' } } }, { GOOGLE_APPLICATION_CREDENTIALS: '/ambient.json' })[1].keyfile).toBe('/ambient.json');
    expect(messages(validate(withSpec({ storage: { gcs: { bucket: 'b' } } })).errors)[0]).toMatch(/^spec\.storage\.gcs needs credentials: set REGISTRY_STORAGE_GCS_KEYFILE/);
  });

  it('azure: cloudName picks the blob endpoint (AzurePublicCloud by default); the key comes from REGISTRY_STORAGE_AZURE_ACCOUNTKEY', () => {
    const env = { REGISTRY_STORAGE_AZURE_ACCOUNTKEY: 'a2V5' };
    const endpoint = (cloudName?: string) => mapped({ storage: { azure: { accountName: 'acct', container: 'c', ...(cloudName ? { cloudName } : {}) } } }, env)[1].endpoint_url;
    expect(endpoint()).toBe('https://acct.blob.core.windows.net');
    expect(endpoint('AzureUSGovernmentCloud')).toBe('https://acct.blob.core.usgovcloudapi.net');
    expect(endpoint('AzureChinaCloud')).toBe('https://acct.blob.core.chinacloudapi.cn');
    expect(endpoint('AzureGermanCloud')).toBe('https://acct.blob.core.cloudapi.de');
    expect(messages(validate(withSpec({ storage: { azure: { accountName: 'acct', cloudName: 'AzureMarsCloud' } } }), env).errors)[0])
      .toBe('spec.storage.azure.cloudName: "AzureMarsCloud" is not valid; expected one of "AzurePublicCloud", "AzureUSGovernmentCloud", "AzureChinaCloud", "AzureGermanCloud"');
    expect(messages(validate(withSpec({ storage: { managementState: 'Unmanaged', azure: { accountName: 'acct' } } })).errors)).toEqual([
      'spec.storage.azure.container is required when spec.storage.managementState is Unmanaged',
      'spec.storage.azure needs the account key: set REGISTRY_STORAGE_AZURE_ACCOUNTKEY',
    ]);
  });

  it("swift: OpenShift's fields onto Quay's SwiftStorage parameters, user and password from REGISTRY_STORAGE_SWIFT_*", () => {
    const spec = { storage: { swift: { authURL: 'https://keystone:5000/v3', container: 'registry', domain: 'Default', tenant: 'quay', regionName: 'RegionOne' } } };
    const location = mapped(spec, { REGISTRY_STORAGE_SWIFT_USER: 'u', REGISTRY_STORAGE_SWIFT_PASSWORD: 'p' });
    expect(location).toEqual(['SwiftStorage', {
      auth_url: 'https://keystone:5000/v3', auth_version: '3', swift_container: 'registry', swift_user: 'u', swift_password: 'p',
      storage_path: '/docker/registry/v2',
      os_options: { project_name: 'quay', user_domain_name: 'Default', project_domain_name: 'Default', region_name: 'RegionOne' },
    }]);
    expect(messages(validate(withSpec({ storage: { swift: {} } })).errors).slice(0, 3)).toEqual([
      'spec.storage.swift.authURL is required', 'spec.storage.swift.container is required',
      'spec.storage.swift needs REGISTRY_STORAGE_SWIFT_USER and REGISTRY_STORAGE_SWIFT_PASSWORD',
    ]);
  });

  it('pvc and emptyDir: the mounted volume; emptyDir refused with more than one replica, pvc warned to be RWX', () => {
    expect(mapped({ storage: { pvc: { claim: '' } } })).toEqual(['LocalStorage', { storage_path: '/registry' }]);
    expect(mapped({ storage: { emptyDir: {} } }, { QUAYFLEET_REGISTRY_VOLUME: '/var/lib/registry' })).toEqual(['LocalStorage', { storage_path: '/var/lib/registry' }]);
    expect(validate(withSpec({ replicas: 2, storage: { emptyDir: {} } })).errors).toEqual([{
      FieldGroup: 'DistributedStorage', Tags: ['spec.replicas'],
      Message: 'spec.storage.emptyDir cannot be used with more than one replica (spec.replicas is 2): images would be spread over pods and lost on restart; use pvc (ReadWriteMany) or object storage',
    }]);
    expect(messages(validate(withSpec({ replicas: 2, storage: { pvc: { claim: 'registry-storage-pvc' } } })).warnings))
      .toEqual(['spec.storage.pvc.claim registry-storage-pvc must be ReadWriteMany with 2 replicas (ReadWriteOnce supports one replica only)']);
  });

  it('the boot check refuses emptyDir in the registry and worker pods (one volume each); quayfleet all may use it', () => {
    const config = parseConfig(withSpec({ replicas: 1, storage: { emptyDir: {} } }));
    expect(processIssues(config, 'all')).toEqual([]);
    expect(processIssues(config, 'gcworker')).toEqual([{ key: 'spec.storage.emptyDir', message: expect.stringMatching(/^spec\.storage\.emptyDir cannot serve the gcworker pod: every pod has its own emptyDir/) }]);
    expect(processIssues(config, 'registry')).toHaveLength(1);
    expect(processIssues(parseConfig(withSpec({ storage: { pvc: {} } })), 'registry')).toEqual([]);
  });

  it('refuses two storage configs, none or two backends, and unknown fields', () => {
    expect(messages(validate({ ...VALID, spec: { storage: { emptyDir: {} } } }).errors))
      .toEqual(['spec.storage and DISTRIBUTED_STORAGE_CONFIG are both set: configure storage in one of them']);
    expect(messages(validate(withSpec({ storage: {} })).errors)).toEqual(['spec.storage must configure one of s3, gcs, azure, swift, pvc, emptyDir']);
    expect(messages(validate(withSpec({ storage: { pvc: {}, emptyDir: {} } })).errors)).toEqual(['spec.storage must configure only one of s3, gcs, azure, swift, pvc, emptyDir (found pvc, emptyDir)']);
    expect(messages(validate(withSpec({ managementState: 'Deleted', storage: { s3: { bucket: 'b', regionendpoint: 'x' } } })).errors)).toEqual([
      'spec.storage.s3: {"bucket":"b","regionendpoint":"x"} is not valid; unknown field "regionendpoint"',
      'spec.managementState: "Deleted" is not valid; expected one of "Managed", "Unmanaged", "Removed"',
    ]);
  });

  it('management states: Managed prunes blobs, Removed and Unmanaged metadata only (GC-17)', () => {
    const state = (managementState?: string) => parseConfig(withSpec({ ...(managementState ? { managementState } : {}), storage: { emptyDir: {} } })).imageRegistry;
    expect(state()).toMatchObject({ managementState: 'Managed', pruneBlobs: true, backend: 'emptyDir' });
    expect(state('Removed')).toMatchObject({ managementState: 'Removed', pruneBlobs: false });
    expect(state('Unmanaged')).toMatchObject({ managementState: 'Unmanaged', pruneBlobs: false });
    expect(parseConfig({}).imageRegistry).toMatchObject({ managementState: 'Managed', pruneBlobs: true, backend: undefined });
  });
});

describe('the effective config (GET /api/v1/config)', () => {
  it("fills Quay's defaults and redacts every secret, at any depth", () => {
    const config = parseConfig({ ...VALID, MAIL_PASSWORD: 'mailpw', SECRET_KEY: 'sk' });
    const shown = redactConfig(effectiveConfig(config));
    expect(shown).toMatchObject({
      AUTHENTICATION_TYPE: 'Database', AVATAR_KIND: 'local', DEFAULT_TAG_EXPIRATION: '2w', EXTERNAL_TLS_TERMINATION: false,
      FEATURE_ACTION_LOG_ROTATION: false, FEATURE_ANONYMOUS_ACCESS: true, FEATURE_APP_SPECIFIC_TOKENS: true, BROWSER_API_CALLS_XHR_ONLY: false,
      DB_CONNECTION_ARGS: { autorollback: true, threadlocals: true },
      DB_URI: 'postgresql://quay:<redacted>@db.example.com:5432/quay',
      MAIL_PASSWORD: '<redacted>', SECRET_KEY: '<redacted>',
      BUILDLOGS_REDIS: { host: 'redis.example.com', password: '<redacted>' },
    });
    expect((shown.DISTRIBUTED_STORAGE_CONFIG as Record<string, unknown[]>).default![1]).toMatchObject({ access_key: '<redacted>', secret_key: '<redacted>', bucket_name: 'quay' });
    expect(JSON.stringify(shown)).not.toMatch(/secretpw|redispw|mailpw|"SK"/);
  });
});
