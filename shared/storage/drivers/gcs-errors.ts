/** Maps @google-cloud/storage errors (ApiError and friends) onto the typed storage errors. */
import { InvalidRangeError, NotFoundError, StorageError, messageOf, redactSecrets } from '../errors.ts';

interface ApiErrorLike {
  code?: number | string;
  message?: string;
}

/**
 * The typed storage error for a GCS SDK error. A 404 for the bucket itself is a configuration
 * error, never a missing object.
 */
export function gcsError(error: unknown, operation: string, key: string | undefined, secrets: readonly (string | undefined)[]): StorageError {
  if (error instanceof StorageError) return error;
  const api = (error ?? {}) as ApiErrorLike;
  const message = redactSecrets(messageOf(error), secrets);
  const context = { driver: 'GoogleCloudStorage', operation, key, cause: error };
  if (api.code === 404 && !/bucket does not exist/i.test(message)) return new NotFoundError('no such object', context);
  if (api.code === 416) return new InvalidRangeError('range starts past the end of the object', context);
  return new StorageError(typeof api.code === 'number' ? `HTTP ${api.code}: ${message}` : message, context);
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);

/** Whether a read that failed before any byte was delivered is worth another attempt (reset connection, 429, 5xx). */
export function isTransient(error: unknown): boolean {
  const cause = (error instanceof StorageError ? error.cause : error) as { code?: number | string; errno?: string } | undefined;
  const code = cause?.code;
  if (typeof code === 'number') return code === 429 || code >= 500;
  return TRANSIENT_CODES.has(String(code ?? cause?.errno ?? ''));
}
