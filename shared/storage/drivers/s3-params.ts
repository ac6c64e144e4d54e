/**
 * Quay's parameters of the S3 family (`S3Storage`, `RadosGWStorage`) and their translation into the
 * settings the S3 driver runs with. Credentials come from the parameters, else from the
 * environment (`REGISTRY_STORAGE_S3_ACCESSKEY`/`_SECRETKEY`, then `AWS_ACCESS_KEY_ID`/
 * `AWS_SECRET_ACCESS_KEY`), else from the AWS SDK's default chain (instance roles, web identity).
 */
import { z } from 'zod';

const MiB = 1024 * 1024;

/** `"9000"` or `9000`: Quay's configs carry ports as strings. */
const port = z.union([z.number().int(), z.string().regex(/^\d+$/, 'must be a port number').transform(Number)])
  .pipe(z.number().int().min(1).max(65535));
/** `false` or `"false"`, as YAML and environment overrides write it. */
const flag = z.union([z.boolean(), z.enum(['true', 'false', 'True', 'False']).transform((v) => v.toLowerCase() === 'true')]);

/** Parameters of ours that every cloud driver accepts beside Quay's. */
export const tuningParams = {
  /** Keys per listing request (the backend's maximum by default); tests use a small page. */
  list_page_size: z.number().int().min(1).max(1000).optional(),
};

/** Quay's S3Storage parameters (plus the optional endpoint, region and encryption of newer Quay). */
export const s3ParamsSchema = z.object({
  s3_bucket: z.string().min(1),
  storage_path: z.string().optional(),
  s3_access_key: z.string().min(1).optional(),
  s3_secret_key: z.string().min(1).optional(),
  /** A host name without scheme (Quay refuses `http://`), for S3-compatible endpoints over HTTPS. */
  host: z.string().min(1).refine((h) => !/^https?:/i.test(h), 'host name must not start with http:// or https://').optional(),
  port: port.optional(),
  s3_region: z.string().min(1).optional(),
  /** Full endpoint URL of an S3-compatible server (`http://minio:9000`). */
  endpoint_url: z.url().optional(),
  /** `AES256` (Quay's default on AWS) or `aws:kms`; off by default on other endpoints. */
  server_side_encryption: z.enum(['AES256', 'aws:kms']).optional(),
  sse_kms_key_id: z.string().min(1).optional(),
  /** Objects larger than this are copied part by part (S3 copies at most 5 GiB in one request). */
  multipart_copy_threshold_bytes: z.number().int().min(5 * MiB).optional(),
  /** Bucket in the host name (`bucket.endpoint`) instead of the path, with a custom endpoint (OpenShift's `virtualHostedStyle`). */
  virtual_hosted_style: flag.optional(),
  /** PEM file of extra CAs the endpoint's certificate may chain to, added to Node's roots (OpenShift's `trustedCA`). */
  ca_bundle_file: z.string().min(1).optional(),
  /** Create the bucket when it does not exist (OpenShift's `managementState: Managed`). */
  create_bucket: flag.optional(),
  ...tuningParams,
});
export type S3Params = z.infer<typeof s3ParamsSchema>;

/** Quay's RadosGWStorage parameters (Ceph RadosGW, MinIO, ODF and other S3-compatible servers). */
export const radosgwParamsSchema = z.object({
  hostname: z.string().min(1),
  port: port.optional(),
  is_secure: flag.default(false),
  access_key: z.string().min(1).optional(),
  secret_key: z.string().min(1).optional(),
  bucket_name: z.string().min(1),
  storage_path: z.string().optional(),
  multipart_copy_threshold_bytes: z.number().int().min(5 * MiB).optional(),
  /** PEM file of extra CAs a TLS gateway's certificate may chain to (as S3Storage's; extra_ca_certs in online validation). */
  ca_bundle_file: z.string().min(1).optional(),
  ...tuningParams,
});
export type RadosGWParams = z.infer<typeof radosgwParamsSchema>;

/** Everything the S3 driver needs, independent of which Quay driver name configured it. */
export interface S3Settings {
  readonly driverName: string;
  readonly bucket: string;
  readonly storagePath?: string;
  /** Undefined means the SDK's regional AWS endpoint. */
  readonly endpoint?: string;
  /** AWS itself: virtual-hosted style and the SDK's default checksums. Elsewhere path style and checksums only where required. */
  readonly aws: boolean;
  readonly region: string;
  readonly credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  readonly serverSideEncryption?: 'AES256' | 'aws:kms';
  readonly kmsKeyId?: string;
  readonly listPageSize: number;
  /** False for endpoints without DeleteObjects (GCS's XML API): deletes go one by one, in parallel. */
  readonly nativeBatchDelete: boolean;
  readonly multipartCopyThresholdBytes: number;
  /** Bucket in the host name off AWS (on AWS the SDK chooses, virtual-hosted where the name allows). */
  readonly virtualHostedStyle?: boolean;
  /** PEM file of extra CAs for the endpoint. */
  readonly caBundleFile?: string;
  /** `ensureBucket` may create the bucket (else it only checks that it exists). */
  readonly createBucket?: boolean;
}

const S3_COPY_LIMIT = 5 * 1024 * MiB;

/** Credentials from explicit values, else the documented environment variables, else undefined (SDK chain). */
export function credentialsFrom(accessKey: string | undefined, secretKey: string | undefined, env: NodeJS.ProcessEnv): S3Settings['credentials'] {
  if (accessKey && secretKey) return { accessKeyId: accessKey, secretAccessKey: secretKey };
  if (env.REGISTRY_STORAGE_S3_ACCESSKEY && env.REGISTRY_STORAGE_S3_SECRETKEY) {
    return { accessKeyId: env.REGISTRY_STORAGE_S3_ACCESSKEY, secretAccessKey: env.REGISTRY_STORAGE_S3_SECRETKEY };
  }
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    return { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN };
  }
  return undefined;
}

/** Settings of an `S3Storage` location. */
export function s3Settings(params: S3Params, env: NodeJS.ProcessEnv): S3Settings {
  const endpoint = params.endpoint_url
    ?? (params.host ? `https://${params.host}${params.port ? `:${params.port}` : ''}` : undefined);
  const onAws = endpoint === undefined || /(^|\.)amazonaws\.com(\.cn)?$/i.test(new URL(endpoint).hostname);
  const sse = params.server_side_encryption ?? (params.sse_kms_key_id ? 'aws:kms' : onAws ? 'AES256' : undefined);
  return {
    driverName: 'S3Storage',
    bucket: params.s3_bucket,
    storagePath: params.storage_path,
    // A host naming AWS is what the SDK derives from the region anyway; an explicit URL (a VPC
    // endpoint, say) is kept as given.
    endpoint: params.endpoint_url ?? (onAws ? undefined : endpoint),
    aws: onAws,
    region: params.s3_region ?? env.AWS_REGION ?? 'us-east-1',
    credentials: credentialsFrom(params.s3_access_key, params.s3_secret_key, env),
    serverSideEncryption: sse,
    kmsKeyId: sse === 'aws:kms' ? params.sse_kms_key_id : undefined,
    listPageSize: params.list_page_size ?? 1000,
    nativeBatchDelete: true,
    multipartCopyThresholdBytes: params.multipart_copy_threshold_bytes ?? S3_COPY_LIMIT,
    virtualHostedStyle: params.virtual_hosted_style,
    caBundleFile: params.ca_bundle_file,
    createBucket: params.create_bucket,
  };
}

/** Settings of a `RadosGWStorage` location. */
export function radosgwSettings(params: RadosGWParams, env: NodeJS.ProcessEnv): S3Settings {
  const scheme = params.is_secure ? 'https' : 'http';
  return {
    driverName: 'RadosGWStorage',
    bucket: params.bucket_name,
    storagePath: params.storage_path,
    endpoint: `${scheme}://${params.hostname}${params.port ? `:${params.port}` : ''}`,
    aws: false,
    region: 'us-east-1',
    credentials: credentialsFrom(params.access_key, params.secret_key, env),
    listPageSize: params.list_page_size ?? 1000,
    nativeBatchDelete: true,
    multipartCopyThresholdBytes: params.multipart_copy_threshold_bytes ?? S3_COPY_LIMIT,
    caBundleFile: params.ca_bundle_file,
  };
}
