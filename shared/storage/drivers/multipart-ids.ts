/**
 * What the drivers that keep their own multipart bookkeeping (local, Azure, GCS key-file) share:
 * upload ids, and the check that the parts to complete are exactly 1..n.
 */
import { randomBytes } from 'node:crypto';
import { StorageError } from '../errors.ts';

const UPLOAD_ID = /^[0-9a-f]{32}$/;

/** A new upload id: 32 lowercase hex characters (safe in file names, object names and block ids). */
export function newUploadId(): string {
  return randomBytes(16).toString('hex');
}

/** Whether `id` has the shape of an upload id from `newUploadId` (anything else is an unknown upload). */
export function isUploadId(id: string): boolean {
  return UPLOAD_ID.test(id);
}

/** Throws unless `partNumbers`, in ascending order, are exactly 1..n with n >= 1. */
export function assertPartsComplete(partNumbers: readonly number[], driver: string, key: string): void {
  const context = { driver, operation: 'complete', key };
  if (partNumbers.length === 0) throw new StorageError('a multipart upload needs at least one part', context);
  partNumbers.forEach((part, index) => {
    if (part !== index + 1) throw new StorageError(`part ${index + 1} is missing`, context);
  });
}
