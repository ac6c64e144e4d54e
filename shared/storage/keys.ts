/**
 * Object keys: the rules every key obeys (see the glossary in `types.ts`), Quay's blob and upload
 * layout, and the mapping between driver-relative keys and backend object names under a location's
 * `storage_path`.
 */
import { InvalidKeyError } from './errors.ts';

/** Longest key, in UTF-8 bytes (S3's and GCS's object-name limit). */
export const MAX_KEY_BYTES = 1024;

/**
 * Keys under this prefix hold drivers' own bookkeeping (temp files, multipart parts and markers).
 * Callers cannot write there, and `list` never shows it.
 */
export const RESERVED_PREFIX = '.quayfleet/';

// Control characters break HTTP headers, XML listings and log lines alike.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why `key` is not a valid object key, or undefined when it is. */
export function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'key is empty';
  return pathProblem(key, false);
}

/**
 * Why `prefix` is not a valid listing prefix, or undefined when it is. Prefixes follow the key rules
 * but may be empty, may end with `/`, and their last segment may be a partial name such as `.`.
 */
export function prefixProblem(prefix: string): string | undefined {
  if (typeof prefix !== 'string') return 'prefix is not a string';
  if (prefix.length === 0) return undefined;
  return pathProblem(prefix, true);
}

function pathProblem(path: string, isPrefix: boolean): string | undefined {
  if (Buffer.byteLength(path) > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes`;
  if (Buffer.from(path).toString() !== path) return 'not well-formed Unicode';
  if (CONTROL.test(path)) return 'contains a control character';
  if (path.startsWith('/')) return 'starts with /';
  if (!isPrefix && path.endsWith('/')) return 'ends with /';
  if (path.includes('//')) return 'contains //';
  const segments = path.split('/');
  // A prefix's last segment is a partial name: `a/.` legitimately matches `a/.hidden`.
  const whole = isPrefix ? segments.slice(0, -1) : segments;
  if (whole.some((s) => s === '.' || s === '..')) return 'contains a . or .. segment';
  if (`${path}/`.startsWith(RESERVED_PREFIX)) return `${RESERVED_PREFIX} is reserved for the drivers`;
  return undefined;
}

/** Throws `InvalidKeyError` unless `key` is a valid key. */
export function assertValidKey(key: string, operation: string, driver?: string): void {
  const problem = keyProblem(key);
  if (problem) throw new InvalidKeyError(problem, { driver, operation, key });
}

/** Throws `InvalidKeyError` unless `prefix` is a valid listing prefix. */
export function assertValidPrefix(prefix: string, operation: string, driver?: string): void {
  const problem = prefixProblem(prefix);
  if (problem) throw new InvalidKeyError(problem, { driver, operation, key: prefix });
}

const DIGEST = /^sha256:([0-9a-f]{64})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The key of a blob, Quay's layout: `sha256:<64 hex>` -> `sha256/<2 hex>/<64 hex>`. */
export function blobKey(digest: string): string {
  const hex = DIGEST.exec(digest)?.[1];
  if (!hex) throw new InvalidKeyError('digest must be sha256:<64 lowercase hex>', { operation: 'blobKey', key: digest });
  return `sha256/${hex.slice(0, 2)}/${hex}`;
}

/** The key of an upload in progress, Quay's layout: `uploads/<uuid>` (lowercase RFC 4122 form). */
export function uploadKey(uuid: string): string {
  if (!UUID.test(uuid)) throw new InvalidKeyError('upload id must be a lowercase UUID', { operation: 'uploadKey', key: uuid });
  return `uploads/${uuid}`;
}

/** Quay's `storage_path` without leading or trailing slashes (`/registry/` -> `registry`). */
export function normalizeStoragePath(storagePath: string | undefined): string {
  return (storagePath ?? '').replace(/^\/+|\/+$/g, '');
}

/**
 * Maps keys to backend object names under a location's root (`<storage_path>/<key>`) and back.
 * Names outside the root or in the reserved area map back to undefined, so listings skip them.
 */
export class KeyPrefix {
  /** `''` or the normalized storage path followed by `/`. */
  readonly root: string;

  constructor(storagePath: string | undefined) {
    const path = normalizeStoragePath(storagePath);
    this.root = path ? `${path}/` : '';
  }

  /** The backend object name of `key`. */
  toBackend(key: string): string {
    return this.root + key;
  }

  /** The key of a backend object name, or undefined when the name is not a caller-visible key. */
  fromBackend(name: string): string | undefined {
    if (!name.startsWith(this.root)) return undefined;
    const key = name.slice(this.root.length);
    return key.startsWith(RESERVED_PREFIX) ? undefined : key;
  }

  /** The backend name of a driver bookkeeping object (`<root>.quayfleet/<path>`). */
  reserved(path: string): string {
    return `${this.root}${RESERVED_PREFIX}${path}`;
  }
}
