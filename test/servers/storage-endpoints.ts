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
