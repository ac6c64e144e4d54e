import { describeObjectStore } from '../conformance.ts';
import { RADOSGW } from '../../../test/servers/storage-endpoints.ts';
import { createObjectStore, loadStorageDrivers } from './index.ts';

// The cloud drivers load on demand (drivers/index.ts); this file uses them directly.
await loadStorageDrivers();

const radosgw = (storagePath: string) => createObjectStore('RadosGWStorage', {
  hostname: RADOSGW.host, port: String(RADOSGW.port), is_secure: false, access_key: RADOSGW.accessKey,
  secret_key: RADOSGW.secretKey, bucket_name: RADOSGW.bucket, storage_path: storagePath, list_page_size: 10,
});
describeObjectStore('RadosGWStorage on Ceph RadosGW', {
  create: () => radosgw('/datastorage/registry'),
  createPeer: () => radosgw('/datastorage/peer'),
});

// S3Storage against the same server, with credentials from the environment and copies above 5 MiB
// done part by part (UploadPartCopy), so the large-object copy path runs too.
const s3 = (storagePath: string) => createObjectStore('S3Storage', {
  s3_bucket: RADOSGW.bucket, storage_path: storagePath, endpoint_url: RADOSGW.endpoint,
  list_page_size: 10, multipart_copy_threshold_bytes: 5 * 1024 * 1024,
}, { REGISTRY_STORAGE_S3_ACCESSKEY: RADOSGW.accessKey, REGISTRY_STORAGE_S3_SECRETKEY: RADOSGW.secretKey });
describeObjectStore('S3Storage on Ceph RadosGW', { create: () => s3('registry'), createPeer: () => s3('peer') });
