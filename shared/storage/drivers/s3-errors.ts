/** Maps AWS SDK (S3) errors onto the typed storage errors. */
import { InvalidRangeError, NotFoundError, StorageError, messageOf, redactSecrets } from '../errors.ts';

interface SdkError {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** S3 error names meaning "this object (or upload) is not there". `NoSuchBucket` is not one: a missing bucket is a configuration error. */
const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchUpload']);

/** The typed storage error for an S3 SDK error; `secrets` are scrubbed from the message. */
export function s3Error(error: unknown, driver: string, operation: string, key: string | undefined, secrets: readonly (string | undefined)[]): StorageError {
  if (error instanceof StorageError) return error;
  const sdk = (error ?? {}) as SdkError;
  const name = sdk.name ?? sdk.Code ?? '';
  const status = sdk.$metadata?.httpStatusCode;
  const context = { driver, operation, key, cause: error };
  if (NOT_FOUND.has(name) || (status === 404 && name !== 'NoSuchBucket')) return new NotFoundError('no such object', context);
  if (name === 'InvalidRange' || status === 416) return new InvalidRangeError('range starts past the end of the object', context);
  const reason = redactSecrets(messageOf(error), secrets);
  return new StorageError(status ? `${name || 'error'} (HTTP ${status}): ${reason}` : reason, context);
}
