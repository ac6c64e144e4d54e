/**
 * Quay's encrypted columns (`EncryptedCharField`, data/encryption.py, util/security/secret.py), so
 * credentials a Quay database stores decrypt here and the other way round:
 * - key: DATABASE_SECRET_KEY as Quay's `convert_secret_key` reads it (an integer's big-endian
 *   bytes, else a UUID's 16 bytes, else the characters' code points), repeated to 32 bytes;
 * - cipher: AES-256-CCM, random 13-byte nonce, 16-byte tag, no associated data;
 * - stored text: `v0$$` + base64(nonce ‖ ciphertext ‖ tag).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const PREFIX = 'v0$$';
const NONCE_BYTES = 13;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** A stored value that does not decrypt with this key (Quay's DecryptionFailureException). */
export class DecryptionFailureError extends Error {
  constructor(reason: string) {
    super(`cannot decrypt the stored value: ${reason}`);
    this.name = 'DecryptionFailureError';
  }
}

/** A DATABASE_SECRET_KEY Quay itself could not turn into a key. */
export class InvalidSecretKeyError extends Error {
  constructor(reason: string) {
    super(`DATABASE_SECRET_KEY is unusable: ${reason}`);
    this.name = 'InvalidSecretKeyError';
  }
}

// Python's int(): surrounding whitespace, an optional sign, digits with single underscores between.
const PYTHON_INT = /^\s*([+-]?)(\d(?:_?\d)*)\s*$/;

function integerBytes(secret: string): Buffer | undefined {
  const match = PYTHON_INT.exec(secret);
  if (!match) return undefined;
  const value = BigInt(match[1] + match[2]!.replace(/_/g, ''));
  // Quay formats with "{:02x}" and bytearray.fromhex: a negative or odd-length hex string raises
  // ValueError, and Quay then falls through to the UUID and character readings.
  const hex = value < 0n ? '-' : value.toString(16).padStart(2, '0');
  return /^(?:[0-9a-f]{2})+$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
}

function uuidBytes(secret: string): Buffer | undefined {
  // Python's uuid.UUID(hex): drops 'urn:' and 'uuid:', strips braces, removes hyphens, 32 hex digits.
  const hex = secret.replace(/urn:/g, '').replace(/uuid:/g, '').replace(/^[{}]+|[{}]+$/g, '').replace(/-/g, '');
  return /^[0-9a-fA-F]{32}$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
}

function characterBytes(secret: string): Buffer {
  const points = [...secret].map((ch) => ch.codePointAt(0)!);
  if (points.some((p) => p > 255)) throw new InvalidSecretKeyError('a character beyond U+00FF (Quay cannot use it either)');
  return Buffer.from(points);
}

/** The 32-byte AES key Quay derives from `secret` (its `convert_secret_key`). */
export function convertSecretKey(secret: string): Buffer {
  const bytes = integerBytes(secret) ?? uuidBytes(secret) ?? characterBytes(secret);
  if (bytes.length === 0) throw new InvalidSecretKeyError('it is empty');
  const key = Buffer.alloc(KEY_BYTES);
  for (let i = 0; i < KEY_BYTES; i += 1) key[i] = bytes[i % bytes.length]!;
  return key;
}

/** Encrypts and decrypts column values in Quay's `v0$$` format with one key. */
export class FieldEncrypter {
  private readonly key: Buffer;

  constructor(secretKey: string) {
    this.key = convertSecretKey(secretKey);
  }

  /** The stored form of `value`; `nonce` only for known-answer tests. */
  encrypt(value: string, nonce: Buffer = randomBytes(NONCE_BYTES)): string {
    const cipher = createCipheriv('aes-256-ccm', this.key, nonce, { authTagLength: TAG_BYTES });
    const plaintext = Buffer.from(value, 'utf8');
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return PREFIX + Buffer.concat([nonce, body]).toString('base64');
  }

  /** The clear value of a stored one; DecryptionFailureError for another key, a bad prefix or damage. */
  decrypt(stored: string): string {
    if (!stored.startsWith(PREFIX)) throw new DecryptionFailureError('unknown encryption version');
    const raw = Buffer.from(stored.slice(PREFIX.length), 'base64');
    if (raw.length < NONCE_BYTES + TAG_BYTES) throw new DecryptionFailureError('value too short');
    const nonce = raw.subarray(0, NONCE_BYTES);
    const tag = raw.subarray(raw.length - TAG_BYTES);
    const body = raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-ccm', this.key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
    } catch {
      throw new DecryptionFailureError('authentication failed (another DATABASE_SECRET_KEY?)');
    }
  }
}
