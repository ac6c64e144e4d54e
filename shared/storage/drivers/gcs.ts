/**
 * GoogleCloudStorage, in the two ways it can be configured:
 * - Quay's way, HMAC keys (`access_key`, `secret_key`): GCS's XML API speaks S3, so the S3 driver
 *   serves it against `https://storage.googleapis.com` (one-by-one deletes: that API has no
 *   multi-object delete).
 * - a service-account key (`keyfile`, `key_file` or `REGISTRY_STORAGE_GCS_KEYFILE`, holding the JSON
 *   itself or a path to it): the JSON API through @google-cloud/storage (see `gcs-store.ts`).
 */
import { readFileSync } from 'node:fs';
import { S3Store } from './s3.ts';
import { GcsStore, type ServiceAccountKey } from './gcs-store.ts';
import type { ObjectStore } from '../types.ts';
import type { GcsParams } from './gcs-params.ts';
import type { StorageTimeouts } from '../timeouts.ts';

const MiB = 1024 * 1024;
const XML_API = 'https://storage.googleapis.com';


/** Builds the GoogleCloudStorage store for `params`, choosing HMAC or service-account mode. */
export function createGcsStore(params: GcsParams, env: NodeJS.ProcessEnv, timeouts?: StorageTimeouts): ObjectStore {
  if (params.access_key && params.secret_key) {
    return new S3Store({
      driverName: 'GoogleCloudStorage',
      bucket: params.bucket_name,
      storagePath: params.storage_path,
      endpoint: params.endpoint_url ?? XML_API,
      aws: false,
      region: 'auto',
      credentials: { accessKeyId: params.access_key, secretAccessKey: params.secret_key },
      listPageSize: params.list_page_size ?? 1000,
      nativeBatchDelete: false,
      multipartCopyThresholdBytes: 5 * 1024 * MiB,
    }, timeouts);
  }
  const keySource = params.keyfile ?? params.key_file ?? env.REGISTRY_STORAGE_GCS_KEYFILE;
  if (!keySource) {
    throw new Error('needs access_key and secret_key (HMAC), or a service-account key in keyfile, key_file or REGISTRY_STORAGE_GCS_KEYFILE');
  }
  return new GcsStore({
    bucket: params.bucket_name,
    storagePath: params.storage_path,
    key: parseServiceAccountKey(keySource),
    apiEndpoint: params.api_endpoint,
    projectId: params.project_id,
    create: params.create_bucket ? { location: params.location, kmsKeyName: params.kms_key_name } : undefined,
    listPageSize: params.list_page_size ?? 1000,
  }, timeouts);
}

/** The key from JSON text or from the file it names; errors never quote the key. */
export function parseServiceAccountKey(source: string): ServiceAccountKey {
  let text = source.trim();
  if (!text.startsWith('{')) {
    try {
      text = readFileSync(text, 'utf8');
    } catch (error) {
      throw new Error(`the service-account key file cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  let key: Partial<ServiceAccountKey>;
  try {
    key = JSON.parse(text) as Partial<ServiceAccountKey>;
  } catch {
    throw new Error('the service-account key is not valid JSON');
  }
  if (typeof key.client_email !== 'string' || typeof key.private_key !== 'string') {
    throw new Error('the service-account key lacks client_email or private_key');
  }
  return { client_email: key.client_email, private_key: key.private_key, project_id: key.project_id };
}
