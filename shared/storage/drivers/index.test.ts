import { describe, expect, it } from 'vitest';
import { RADOSGW } from '../../../test/servers/storage-endpoints.ts';
import { StorageError } from '../errors.ts';
import { DRIVER_NAMES, StorageConfigError, createObjectStore, loadStorageDrivers } from './index.ts';
import { radosgwParamsSchema, radosgwSettings, s3ParamsSchema, s3Settings } from './s3-params.ts';

// The cloud drivers load on demand (drivers/index.ts); this file uses them directly.
await loadStorageDrivers();

const SECRET = 'sEcReT-v4lue-that-must-never-show';

function configError(driver: string, params: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): StorageConfigError {
  try {
    createObjectStore(driver, params, env);
  } catch (error) {
    expect(error).toBeInstanceOf(StorageConfigError);
    expect((error as Error).message).not.toContain(SECRET);
    return error as StorageConfigError;
  }
  throw new Error(`${driver} accepted ${JSON.stringify(Object.keys(params))}`);
}

describe('createObjectStore parameter validation', () => {
  it('knows exactly Quay\'s driver names and lists them for an unknown one', () => {
    expect([...DRIVER_NAMES].sort()).toEqual(['AzureStorage', 'GoogleCloudStorage', 'LocalStorage', 'RadosGWStorage', 'S3Storage', 'SwiftStorage']);
    const error = configError('CloudFrontedS3Storage', {});
    expect(error.message).toBe('CloudFrontedS3Storage: unknown storage driver (known: LocalStorage, S3Storage, RadosGWStorage, GoogleCloudStorage, AzureStorage, SwiftStorage)');
  });

  it('names each missing or invalid parameter without echoing values', () => {
    expect(configError('LocalStorage', {}).issues).toEqual(['missing required parameter "storage_path"']);
    expect(configError('S3Storage', { s3_access_key: 'AKIA', s3_secret_key: SECRET }).issues).toEqual(['missing required parameter "s3_bucket"']);
    const s3 = configError('S3Storage', { s3_bucket: 'b', s3_secret_key: 12345, endpoint_url: `not a url ${SECRET}`, host: 'https://s3.example.com' });
    expect(s3.issues.map((i) => i.split(':')[0])).toEqual(['invalid parameter "s3_secret_key"', 'invalid parameter "host"', 'invalid parameter "endpoint_url"']);
    expect(s3.issues[1]).toContain('must not start with http:// or https://');
    const rados = configError('RadosGWStorage', { hostname: 'rgw', bucket_name: 'b', port: 'eighty', is_secure: 'maybe', secret_key: SECRET });
    expect(rados.issues.map((i) => i.split(':')[0])).toEqual(['invalid parameter "port"', 'invalid parameter "is_secure"']);
    expect(configError('AzureStorage', { azure_container: 'c' }).issues).toEqual(['missing required parameter "azure_account_name"']);
    const swift = configError('SwiftStorage', { swift_container: 'a/b', auth_url: 'keystone:5000', auth_version: 2, swift_password: SECRET, large_object: 'xlo' });
    expect(swift.issues.map((i) => i.split(':')[0])).toEqual(['invalid parameter "swift_container"', 'invalid parameter "auth_url"', 'invalid parameter "auth_version"', 'invalid parameter "large_object"']);
    expect(swift.issues[2]).toContain('Keystone v2.0 is retired');
  });

  it('reports rules spanning parameters and the environment', () => {
    expect(configError('AzureStorage', { azure_container: 'c', azure_account_name: 'a' }).issues[0]).toContain('needs azure_account_key (or REGISTRY_STORAGE_AZURE_ACCOUNTKEY) or sas_token');
    expect(configError('GoogleCloudStorage', { bucket_name: 'b', access_key: 'GOOG' }).issues).toEqual(['invalid parameter "secret_key": access_key and secret_key go together']);
    expect(configError('GoogleCloudStorage', { bucket_name: 'b' }).issues[0]).toContain('needs access_key and secret_key (HMAC), or a service-account key');
    expect(configError('GoogleCloudStorage', { bucket_name: 'b', keyfile: `{"private_key": "${SECRET}"` }).issues).toEqual(['the service-account key is not valid JSON']);
    expect(configError('GoogleCloudStorage', { bucket_name: 'b' }, { REGISTRY_STORAGE_GCS_KEYFILE: `{"private_key": "${SECRET}"}` }).issues)
      .toEqual(['the service-account key lacks client_email or private_key']);
    expect(configError('GoogleCloudStorage', { bucket_name: 'b', key_file: '/nonexistent/key.json' }).issues).toEqual(['the service-account key file cannot be read (ENOENT)']);
    const swift = { swift_container: 'c', auth_url: 'https://keystone.example/v3', auth_version: 3 };
    expect(configError('SwiftStorage', { ...swift, swift_user: 'u' }).issues).toEqual(['needs swift_password (or REGISTRY_STORAGE_SWIFT_PASSWORD)']);
    expect(configError('SwiftStorage', swift, { REGISTRY_STORAGE_SWIFT_PASSWORD: SECRET }).issues).toEqual(['needs swift_user (or REGISTRY_STORAGE_SWIFT_USER)']);
    expect(configError('SwiftStorage', { ...swift, swift_user: 'u', swift_password: SECRET }).issues[0]).toContain('Keystone v3 needs os_options.project_name or project_id');
  });

  it('keeps credentials out of the messages of backend errors', async () => {
    const store = createObjectStore('RadosGWStorage', {
      hostname: RADOSGW.host, port: RADOSGW.port, access_key: RADOSGW.accessKey, secret_key: SECRET, bucket_name: RADOSGW.bucket,
    });
    const error = await store.stat('any/key').then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).message).toMatch(/^RadosGWStorage stat "any\/key": .*HTTP 403/);
    expect((error as StorageError).message).not.toContain(SECRET);
    const url = await store.signedReadUrl('any/key', 60);
    const denied = await store.get('any/key').then(() => undefined, (e: unknown) => e as Error);
    expect(denied?.message).not.toContain(new URL(url).searchParams.get('X-Amz-Signature'));
    await store.close();
  });
});

describe('S3 family settings', () => {
  const env = {};
  it('takes credentials from parameters, then REGISTRY_STORAGE_S3_*, then AWS_*', () => {
    const bucket = { s3_bucket: 'b' };
    expect(s3Settings(s3ParamsSchema.parse({ ...bucket, s3_access_key: 'P', s3_secret_key: 'PS' }), { REGISTRY_STORAGE_S3_ACCESSKEY: 'R', REGISTRY_STORAGE_S3_SECRETKEY: 'RS' }).credentials)
      .toEqual({ accessKeyId: 'P', secretAccessKey: 'PS' });
    expect(s3Settings(s3ParamsSchema.parse(bucket), { REGISTRY_STORAGE_S3_ACCESSKEY: 'R', REGISTRY_STORAGE_S3_SECRETKEY: 'RS', AWS_ACCESS_KEY_ID: 'A', AWS_SECRET_ACCESS_KEY: 'AS' }).credentials)
      .toEqual({ accessKeyId: 'R', secretAccessKey: 'RS' });
    expect(s3Settings(s3ParamsSchema.parse(bucket), { AWS_ACCESS_KEY_ID: 'A', AWS_SECRET_ACCESS_KEY: 'AS' }).credentials)
      .toEqual({ accessKeyId: 'A', secretAccessKey: 'AS', sessionToken: undefined });
    expect(s3Settings(s3ParamsSchema.parse(bucket), env).credentials).toBeUndefined();
  });

  it('talks to AWS with AES256 by default and to other endpoints path-style without encryption', () => {
    const aws = s3Settings(s3ParamsSchema.parse({ s3_bucket: 'b', host: 's3.amazonaws.com', s3_region: 'eu-west-1' }), env);
    expect(aws).toMatchObject({ aws: true, endpoint: undefined, region: 'eu-west-1', serverSideEncryption: 'AES256' });
    const minio = s3Settings(s3ParamsSchema.parse({ s3_bucket: 'b', host: 'minio.internal', port: '9000' }), env);
    expect(minio).toMatchObject({ aws: false, endpoint: 'https://minio.internal:9000', serverSideEncryption: undefined });
    const kms = s3Settings(s3ParamsSchema.parse({ s3_bucket: 'b', sse_kms_key_id: 'alias/registry' }), env);
    expect(kms).toMatchObject({ serverSideEncryption: 'aws:kms', kmsKeyId: 'alias/registry' });
    const rados = radosgwSettings(radosgwParamsSchema.parse({ hostname: 'rgw', port: '9000', is_secure: 'true', bucket_name: 'b' }), env);
    expect(rados).toMatchObject({ aws: false, endpoint: 'https://rgw:9000', driverName: 'RadosGWStorage' });
  });
});
