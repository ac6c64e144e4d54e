/**
 * The typed errors every storage operation rejects with. Drivers map their SDK's errors onto these
 * so callers branch on `instanceof`, never on an SDK's error names or status codes.
 *
 * Messages name the driver, the operation and the key, never a credential: a backend's own message
 * is passed through `redactSecrets` first, and the raw SDK error stays reachable as `cause` (for
 * logging at the boundary, where pino's redaction applies).
 */

/** Where a storage error happened. `driver` is Quay's driver name, `key` the driver-relative key. */
export interface StorageErrorContext {
  readonly driver?: string;
  readonly operation: string;
  readonly key?: string;
  readonly cause?: unknown;
}

/** Base class of every storage error: carries driver, operation, key and the underlying cause. */
export class StorageError extends Error {
  readonly driver: string | undefined;
  readonly operation: string;
  readonly key: string | undefined;

  constructor(reason: string, context: StorageErrorContext) {
    super(describe(reason, context), context.cause === undefined ? undefined : { cause: context.cause });
    this.name = new.target.name;
    this.driver = context.driver;
    this.operation = context.operation;
    this.key = context.key;
  }
}

/** The object (or multipart upload) does not exist. */
export class NotFoundError extends StorageError {}

/** The key (or prefix, digest, upload id) breaks the key rules in `keys.ts`; nothing was sent to the backend. */
export class InvalidKeyError extends StorageError {}

/** The byte range is malformed or starts past the end of the object. */
export class InvalidRangeError extends StorageError {}

/** The driver or its backend cannot do this operation (see `capabilities` and the README table). */
export class UnsupportedError extends StorageError {}

function describe(reason: string, context: StorageErrorContext): string {
  const where = [context.driver ?? 'storage', context.operation, context.key === undefined ? undefined : JSON.stringify(context.key)];
  return `${where.filter(Boolean).join(' ')}: ${reason}`;
}

// Query parameters that carry signatures or credentials in presigned URLs of S3, GCS and Azure.
const SECRET_QUERY = /\b(sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|googleaccessid)=[^&\s"']+/gi;

/**
 * Returns `message` with signed-URL parameters and every string in `secrets` replaced by
 * `[redacted]`, so a backend message echoing a request cannot leak a credential into an error.
 */
export function redactSecrets(message: string, secrets: readonly (string | undefined)[] = []): string {
  let out = message.replace(SECRET_QUERY, '$1=[redacted]');
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out;
}

/** Resolves true when `probe` (a stat) succeeds, false when it is `NotFoundError`; rethrows anything else. */
export async function existsBy(probe: Promise<unknown>): Promise<boolean> {
  try {
    await probe;
    return true;
  } catch (error) {
    if (error instanceof NotFoundError) return false;
    throw error;
  }
}

/** The message of any thrown value, for wrapping it. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
