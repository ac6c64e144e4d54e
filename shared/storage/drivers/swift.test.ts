import { describeObjectStore } from '../conformance.ts';
import { RADOSGW_SWIFT } from '../../../test/servers/storage-endpoints.ts';
import { createObjectStore, loadStorageDrivers } from './index.ts';

// The cloud drivers load on demand (drivers/index.ts); this file uses them directly.
await loadStorageDrivers(['SwiftStorage']);

// Segments of 5 MiB, so the conformance suite's multi-MiB objects (12 MiB known length, 7 MiB
// unknown, the 6 MiB copy) are written, read, copied and deleted as static large objects.
describeObjectStore('SwiftStorage (v1 auth, static large objects) on RadosGW', {
  create: () => createObjectStore('SwiftStorage', {
    auth_url: RADOSGW_SWIFT.authUrl, auth_version: 1, swift_user: RADOSGW_SWIFT.user, swift_password: RADOSGW_SWIFT.key,
    swift_container: RADOSGW_SWIFT.container, storage_path: '/datastorage/registry', temp_url_key: RADOSGW_SWIFT.tempUrlKey,
    segment_size_bytes: 5 * 1024 * 1024, list_page_size: 10,
  }),
});

// Dynamic manifests, credentials from the OpenShift operator's environment variables.
describeObjectStore('SwiftStorage (v1 auth, dynamic large objects) on RadosGW', {
  create: () => createObjectStore('SwiftStorage', {
    auth_url: RADOSGW_SWIFT.authUrl, auth_version: '1', swift_container: RADOSGW_SWIFT.container, storage_path: 'registry-dlo',
    large_object: 'dlo', segment_size_bytes: 5 * 1024 * 1024, list_page_size: 10,
  }, { REGISTRY_STORAGE_SWIFT_USER: RADOSGW_SWIFT.user, REGISTRY_STORAGE_SWIFT_PASSWORD: RADOSGW_SWIFT.key }),
});
