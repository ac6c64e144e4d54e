/** Maps Azure Blob SDK errors (RestError) onto the typed storage errors. */
import { InvalidRangeError, NotFoundError, StorageError, messageOf, redactSecrets } from '../errors.ts';

interface RestErrorLike {
  name?: string;
  code?: string;
  statusCode?: number;
  details?: { errorCode?: string };
}

/**
 * The typed storage error for an Azure SDK error. HEAD requests carry no error code, so 404 is
 * decided by status; `ContainerNotFound` is a configuration error, never a missing object.
 */
export function azureError(error: unknown, operation: string, key: string | undefined, secrets: readonly (string | undefined)[]): StorageError {
  if (error instanceof StorageError) return error;
  const rest = (error ?? {}) as RestErrorLike;
  const code = rest.code ?? rest.details?.errorCode;
  const context = { driver: 'AzureStorage', operation, key, cause: error };
  if (rest.statusCode === 404 && code !== 'ContainerNotFound') return new NotFoundError('no such object', context);
  if (rest.statusCode === 416 || code === 'InvalidRange') return new InvalidRangeError('range starts past the end of the object', context);
  const reason = redactSecrets(messageOf(error).split('\n')[0] ?? '', secrets);
  return new StorageError(rest.statusCode ? `${code ?? 'error'} (HTTP ${rest.statusCode}): ${reason}` : reason, context);
}
