/**
 * Where the storage test servers listen and the credentials they accept. All of them are
 * throwaway local servers; none of these values is a real secret (Azurite's key is its published
 * development-account key).
 */

/** Ceph RadosGW (S3) started by radosgw-up.sh. */
export const RADOSGW = {
  host: '127.0.0.1',
  port: 17480,
  endpoint: 'http://127.0.0.1:17480',
  accessKey: 'QUAYFLEETTESTKEY',
  secretKey: 'quayfleet-test-secret',
  bucket: 'quayfleet-test',
  /** Where radosgw-up.sh keeps the cluster when the test harness starts it. */
  dir: '/tmp/quayfleet-ceph',
} as const;

/** Azurite's blob service, with the well-known development account. */
export const AZURITE = {
  host: '127.0.0.1',
  port: 10000,
  accountName: 'devstoreaccount1',
  accountKey: 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
  endpoint: 'http://127.0.0.1:10000/devstoreaccount1',
  container: 'quayfleet-test',
} as const;

/** The Cloud Storage emulator of firebase-tools, run by gcs-emulator.cjs (buckets appear on first write). */
export const GCS_EMULATOR = {
  host: '127.0.0.1',
  port: 9199,
  endpoint: 'http://127.0.0.1:9199',
  bucket: 'quayfleet-test',
  projectId: 'demo-quayfleet',
} as const;

/**
 * RadosGW's Swift API on the same frontend: v1 auth at /auth/1.0, the account at /swift/v1. Its own
 * RGW user (a subuser with a Swift key, made by radosgw-swift.ts), so its containers and its temp
 * URL key never meet the S3 user's buckets.
 */
export const RADOSGW_SWIFT = {
  authUrl: 'http://127.0.0.1:17480/auth/1.0',
  storageUrl: 'http://127.0.0.1:17480/swift/v1',
  uid: 'quayfleet-swift',
  user: 'quayfleet-swift:swift',
  key: 'quayfleet-swift-secret',
  container: 'quayfleet-swift-test',
  tempUrlKey: 'quayfleet-temp-url-key',
} as const;
