/**
 * The storage backends upload cleanup is tested on, one real server each (Ceph RadosGW's S3 and
 * Swift APIs, Azurite, the GCS emulator) plus the filesystem: a label and the Quay driver name and
 * parameters of a fresh root on it (undefined: LocalStorage in the fixture's temp directory).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { AZURITE, GCS_EMULATOR, RADOSGW, RADOSGW_SWIFT } from '../servers/storage-endpoints.ts';

/** Quay's driver name and parameters, or undefined for the fixture's LocalStorage. */
export type UploadBackend = () => [string, Record<string, unknown>] | undefined;

function gcsKeyFile(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return JSON.stringify({
    type: 'service_account', project_id: GCS_EMULATOR.projectId,
    client_email: `quayfleet-test@${GCS_EMULATOR.projectId}.iam.gserviceaccount.com`,
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
  });
}

const root = (): string => `uploads-test-${randomBytes(4).toString('hex')}`;

/** Every backend, as `[label, driver]` rows for `describe.each`. */
export const UPLOAD_BACKENDS: [string, UploadBackend][] = [
  ['RadosGWStorage on Ceph RadosGW', () => ['RadosGWStorage', {
    hostname: RADOSGW.host, port: RADOSGW.port, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey, bucket_name: RADOSGW.bucket, storage_path: root(),
  }]],
  ['AzureStorage on Azurite', () => ['AzureStorage', {
    azure_container: AZURITE.container, azure_account_name: AZURITE.accountName, azure_account_key: AZURITE.accountKey, endpoint_url: AZURITE.endpoint, storage_path: root(),
  }]],
  ['GoogleCloudStorage on the Cloud Storage emulator', () => ['GoogleCloudStorage', {
    bucket_name: GCS_EMULATOR.bucket, storage_path: root(), api_endpoint: GCS_EMULATOR.endpoint, keyfile: gcsKeyFile(),
  }]],
  ['SwiftStorage on RadosGW\'s Swift API', () => ['SwiftStorage', {
    auth_url: RADOSGW_SWIFT.authUrl, swift_user: RADOSGW_SWIFT.user, swift_password: RADOSGW_SWIFT.key, swift_container: RADOSGW_SWIFT.container, storage_path: root(),
  }]],
  ['LocalStorage', () => undefined],
];
