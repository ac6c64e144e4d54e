import { generateKeyPairSync } from 'node:crypto';
import { describeObjectStore } from '../conformance.ts';
import { GCS_EMULATOR, RADOSGW } from '../../../test/servers/storage-endpoints.ts';
import { createObjectStore, loadStorageDrivers } from './index.ts';

// The cloud drivers load on demand (drivers/index.ts); this file uses them directly.
await loadStorageDrivers();

/** A service-account key of a made-up account, with a real RSA key so URL signing works. */
function fakeServiceAccountKey(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return JSON.stringify({
    type: 'service_account',
    project_id: GCS_EMULATOR.projectId,
    client_email: `quayfleet-test@${GCS_EMULATOR.projectId}.iam.gserviceaccount.com`,
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
  });
}
const keyFile = fakeServiceAccountKey();

const emulator = (storagePath: string) => createObjectStore('GoogleCloudStorage', {
  bucket_name: GCS_EMULATOR.bucket, storage_path: storagePath, api_endpoint: GCS_EMULATOR.endpoint, list_page_size: 10,
}, { REGISTRY_STORAGE_GCS_KEYFILE: keyFile });
// The emulator checks neither signatures nor md5Hash; the suite asserts those gaps instead (see the README).
describeObjectStore('GoogleCloudStorage (service-account key) on the Cloud Storage emulator', {
  create: () => emulator('/quaygcp'),
  createPeer: () => emulator('/quaygcp-peer'),
  verifiesSignatures: false,
  checksMd5BeforeStoring: false,
});

// Quay's HMAC mode goes through the S3 driver against GCS's XML API; with no GCS XML API here, it
// runs against RadosGW (endpoint_url), which exercises the same code with one-by-one deletes.
const hmac = (storagePath: string) => createObjectStore('GoogleCloudStorage', {
  bucket_name: RADOSGW.bucket, storage_path: storagePath, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey,
  endpoint_url: RADOSGW.endpoint, list_page_size: 10,
});
describeObjectStore('GoogleCloudStorage (HMAC keys, XML API) on Ceph RadosGW', { create: () => hmac('quaygcp'), createPeer: () => hmac('quaygcp-peer') });
