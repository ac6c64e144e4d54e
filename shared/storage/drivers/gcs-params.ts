/**
 * GoogleCloudStorage's parameters, apart from the driver so that validating a configuration never
 * loads the Google Cloud or AWS SDKs (drivers/index.ts loads a driver only when a location uses it).
 */
import { z } from 'zod';
import { tuningParams } from './s3-params.ts';

/** Quay's GoogleCloudStorage parameters plus the service-account key mode. */
export const gcsParamsSchema = z.object({
  bucket_name: z.string().min(1),
  storage_path: z.string().optional(),
  /** HMAC key pair (Quay's parameters): served through the S3-compatible XML API. */
  access_key: z.string().min(1).optional(),
  secret_key: z.string().min(1).optional(),
  /** Service-account key: the JSON document itself, or a path to it. */
  keyfile: z.string().min(1).optional(),
  key_file: z.string().min(1).optional(),
  /** JSON API endpoint, for an emulator or a private endpoint (key-file mode). */
  api_endpoint: z.url().optional(),
  /** XML API endpoint (HMAC mode), default https://storage.googleapis.com. */
  endpoint_url: z.url().optional(),
  /** Create the bucket when it does not exist (OpenShift's `managementState: Managed`), in this project and location. */
  create_bucket: z.boolean().optional(),
  project_id: z.string().min(1).optional(),
  location: z.string().min(1).optional(),
  /** Cloud KMS key the bucket encrypts new objects with by default (OpenShift's `keyID`). */
  kms_key_name: z.string().min(1).optional(),
  ...tuningParams,
}).refine((p) => (p.access_key === undefined) === (p.secret_key === undefined), {
  message: 'access_key and secret_key go together', path: ['secret_key'],
});
export type GcsParams = z.infer<typeof gcsParamsSchema>;
