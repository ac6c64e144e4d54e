/**
 * Secrets at rest: user passwords, robot tokens and app-specific tokens.
 *
 * Passwords are low-entropy, so they get a slow, salted KDF (node:crypto scrypt). The stored form is
 * a self-describing PHC-style string, so the cost can be raised later without breaking old hashes:
 *
 *     $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt, base64url, 16 bytes>$<key, base64url, 64 bytes>
 *
 * Tokens are generated here with 256+ bits of entropy, so a slow KDF adds nothing but latency on
 * every registry request; they are stored as `sha256$<hex>` and compared in constant time.
 */
import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const SCRYPT_LOG_N = 15;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const KEY_BYTES = 64;
const SALT_BYTES = 16;
// 128 * N * r bytes is what scrypt needs (32 MiB at ln=15); allow headroom above Node's 32 MiB default.
const SCRYPT_MAXMEM = 64 * 1024 * 1024;

function scrypt(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password.normalize('NFC'), salt, KEY_BYTES, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

/** Hashes `password` with a fresh random salt; returns the `$scrypt$...` string to store. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, { N: 2 ** SCRYPT_LOG_N, r: SCRYPT_R, p: SCRYPT_P, maxmem: SCRYPT_MAXMEM });
  return `$scrypt$ln=${SCRYPT_LOG_N},r=${SCRYPT_R},p=${SCRYPT_P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

const STORED_PATTERN = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,2})\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/;

/**
 * Whether `password` matches `stored` (a hashPassword result). A missing or malformed hash never
 * matches. Constant-time in the key comparison.
 */
export async function verifyPassword(password: string, stored: string | null | undefined): Promise<boolean> {
  const match = stored ? STORED_PATTERN.exec(stored) : null;
  if (!match) return false;
  const [, ln, r, p, saltText, keyText] = match;
  const expected = Buffer.from(keyText!, 'base64url');
  if (expected.length !== KEY_BYTES) return false;
  try {
    const key = await scrypt(password, Buffer.from(saltText!, 'base64url'), { N: 2 ** Number(ln), r: Number(r), p: Number(p), maxmem: SCRYPT_MAXMEM });
    return timingSafeEqual(key, expected);
  } catch {
    return false; // parameters out of range: a corrupt row, not a match
  }
}

const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/**
 * A random token of `length` characters from [A-Z0-9] (Quay's robot tokens look like this).
 * Rejection sampling keeps every character uniform.
 */
export function generateToken(length: number): string {
  let token = '';
  while (token.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 252 && token.length < length) token += TOKEN_ALPHABET[byte % TOKEN_ALPHABET.length];
    }
  }
  return token;
}

/** The stored form of a generated token: `sha256$<hex>`. */
export function hashToken(token: string): string {
  return `sha256$${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

/** Whether `token` matches a `hashToken` result, in constant time. */
export function verifyToken(token: string, stored: string | null | undefined): boolean {
  if (!stored?.startsWith('sha256$')) return false;
  const expected = Buffer.from(stored.slice('sha256$'.length), 'hex');
  const actual = createHash('sha256').update(token, 'utf8').digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
