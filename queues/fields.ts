/**
 * Payload fields shared by several queues, so one id or digest is validated the same way
 * everywhere. Payloads carry database ids (numbers); names are for log lines only.
 */
import { z } from 'zod';

/** A database row id (bigserial): a positive integer. */
export const rowId = z.number().int().positive();

/** A content digest as OCI writes it (`sha256:<64 hex>`, or another registered algorithm). */
export const digest = z.string().regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/, 'must be a digest such as sha256:<hex>');

/** A namespace (user or organization) name, or a repository name, as Quay allows them. */
export const name = z.string().min(1).max(255);

/** A UUID (export ids, notification uuids, upload uuids). */
export const uuid = z.uuid();

/**
 * An identifier that becomes part of a dedupe id: letters, digits and `._-` only (Clair
 * notification ids, location names), because a job id may not contain ':'.
 */
export const token = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$/, 'must be letters, digits, ".", "_" or "-"');

/** A unix time in whole seconds. */
export const unixSeconds = z.number().int().nonnegative();

/** `namespace/repository` for log lines, when both names are known. */
export function repositoryLabel(namespace: string | undefined, repository: string | undefined): string | undefined {
  return namespace !== undefined && repository !== undefined ? `${namespace}/${repository}` : undefined;
}
