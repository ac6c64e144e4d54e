/** Error mapping shared by the filesystem driver's files. */
import { NotFoundError, StorageError, messageOf } from '../errors.ts';

/** Quay's name of the filesystem driver. */
export const DRIVER = 'LocalStorage';

/** Maps a filesystem error to a storage error: ENOENT (and a directory where a file was expected) is NotFound. */
export function fsError(error: unknown, operation: string, key?: string): StorageError {
  if (error instanceof StorageError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
    return new NotFoundError('no such object', { driver: DRIVER, operation, key, cause: error });
  }
  return new StorageError(messageOf(error), { driver: DRIVER, operation, key, cause: error });
}
