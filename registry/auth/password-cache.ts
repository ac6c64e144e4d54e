/**
 * Remembers recently verified passwords so a client that authenticates on every request (Docker
 * asks /v2/auth before each operation; API scripts send Basic on every call) pays for scrypt once
 * per `ttlMs`, not per request.
 *
 * Only successes are cached, so wrong guesses always cost a full scrypt. The key is an HMAC under a
 * per-process random key of the stored hash and the password: no password is kept, and a password
 * change (a new stored hash) misses the cache at once.
 */
import { createHmac, randomBytes } from 'node:crypto';

/** A bounded, expiring set of (stored hash, password) pairs known to match. */
export class PasswordCache {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, number>();

  constructor(private readonly options: { ttlMs: number; maxEntries: number } = { ttlMs: 300_000, maxEntries: 10_000 }) {}

  private keyOf(storedHash: string, password: string): string {
    return createHmac('sha256', this.key).update(storedHash).update('\u0000').update(password).digest('base64url');
  }

  /** Whether this pair was verified less than `ttlMs` ago (as of `nowMs`). */
  has(storedHash: string, password: string, nowMs: number): boolean {
    const key = this.keyOf(storedHash, password);
    const expiresAt = this.entries.get(key);
    if (expiresAt === undefined) return false;
    if (expiresAt > nowMs) return true;
    this.entries.delete(key);
    return false;
  }

  /** Records a verified pair; the oldest entry goes when the cache is full. */
  add(storedHash: string, password: string, nowMs: number): void {
    const key = this.keyOf(storedHash, password);
    this.entries.delete(key);
    this.entries.set(key, nowMs + this.options.ttlMs);
    if (this.entries.size > this.options.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}
