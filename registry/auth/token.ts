/**
 * The registry bearer token (Docker token auth, as Quay issues it): an HS256 JWT signed with
 * `deps.tokenSecret`.
 *
 * Claims: `iss` "quay", `aud` SERVER_HOSTNAME, `sub` the username ("(anonymous)" for anonymous),
 * `iat`/`nbf`/`exp`, `access` (Docker's `[{type, name, actions}]`) and `context` (who the principal
 * is: kind, namespace id, username; Quay's context claim carries the same facts).
 *
 * Lifetime: TOKEN_LIFETIME_S = 3600 s, Quay's TOKEN_VALIDITY_LIFETIME_S. A long push keeps working
 * without re-authentication, and revocation does not wait for expiry anyway: every /v2 request
 * re-checks the principal's role in the database (access.ts), so the token only narrows access.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { z } from 'zod';
import type { Principal } from './access.ts';

/** Lifetime of an issued registry token, in seconds. */
export const TOKEN_LIFETIME_S = 3600;
export const TOKEN_ISSUER = 'quay';
export const ANONYMOUS_SUBJECT = '(anonymous)';
// Clocks of several front-end pods drift a little; a token must not be refused for a second's skew.
const CLOCK_TOLERANCE_S = 30;

/** One entry of the `access` claim. Actions are pull, push, delete or `*` (all three). */
export interface TokenAccess {
  type: 'repository';
  /** `namespace/repository`. */
  name: string;
  actions: string[];
}

const contextSchema = z.object({
  version: z.literal(2),
  kind: z.enum(['anonymous', 'user', 'robot', 'apptoken']),
  entity_reference: z.number().int().nullable(),
  user: z.string().nullable(),
});

const claimsSchema = z.object({
  sub: z.string(),
  access: z.array(z.object({ type: z.string(), name: z.string(), actions: z.array(z.string()) })),
  context: contextSchema,
});

/** A verified token: who it was issued to and what it grants. */
export interface VerifiedToken {
  readonly kind: Principal['kind'];
  readonly id: number | undefined;
  readonly username: string | undefined;
  readonly access: TokenAccess[];
  readonly expiresAtS: number;
}

/** Thrown for a token that is malformed, tampered with, for another audience, or expired. */
export class InvalidTokenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidTokenError';
  }
}

// jose imports a raw Uint8Array secret as a key on every call (a measurable share of a manifest
// GET); a KeyObject per secret, made once, skips that.
const keys = new WeakMap<Uint8Array, KeyObject>();
function keyOf(secret: Uint8Array): KeyObject {
  let key = keys.get(secret);
  if (!key) {
    key = createSecretKey(secret);
    keys.set(secret, key);
  }
  return key;
}

export interface TokenSettings {
  readonly secret: Uint8Array;
  /** SERVER_HOSTNAME, the audience. */
  readonly audience: string;
  readonly nowMs: number;
}

/** Signs a token for `principal` granting `access`; returns it with its issue time and lifetime. */
export async function signRegistryToken(
  settings: TokenSettings, principal: Principal, access: TokenAccess[],
): Promise<{ token: string; issuedAtS: number; expiresInS: number }> {
  const issuedAtS = Math.floor(settings.nowMs / 1000);
  const token = await new SignJWT({
    access,
    context: { version: 2, kind: principal.kind, entity_reference: principal.id ?? null, user: principal.username ?? null },
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(TOKEN_ISSUER)
    .setAudience(settings.audience)
    .setSubject(principal.username ?? ANONYMOUS_SUBJECT)
    .setIssuedAt(issuedAtS)
    .setNotBefore(issuedAtS)
    .setExpirationTime(issuedAtS + TOKEN_LIFETIME_S)
    .sign(keyOf(settings.secret));
  return { token, issuedAtS, expiresInS: TOKEN_LIFETIME_S };
}

/**
 * Tokens already verified, per secret and audience: a client sends the same token on every request
 * of a push or pull for up to an hour, and jose's HMAC check goes through WebCrypto's thread-pool
 * job each time (in the registry bench's profile, 9.9 s of 185 s of CPU on 10k manifest GETs and
 * three image pushes and pulls). The signature of a given string never changes, so only what time
 * changes is re-checked on a hit: expiry (nbf/iat only become more valid). Whether the principal
 * may still access the repository is decided per request from the database (access.ts), never from
 * this cache. Bounded: the oldest entry goes first.
 */
const VERIFIED_CACHE_ENTRIES = 4096;
const verified = new WeakMap<Uint8Array, Map<string, VerifiedToken>>();

function verifiedCache(settings: TokenSettings): Map<string, VerifiedToken> {
  let cache = verified.get(settings.secret);
  if (!cache) {
    cache = new Map();
    verified.set(settings.secret, cache);
  }
  return cache;
}

/** Verifies signature, issuer, audience and lifetime; InvalidTokenError on any failure. */
export async function verifyRegistryToken(settings: TokenSettings, token: string): Promise<VerifiedToken> {
  const cache = verifiedCache(settings);
  const key = `${settings.audience}\n${token}`;
  const hit = cache.get(key);
  if (hit) {
    if (settings.nowMs / 1000 < hit.expiresAtS + CLOCK_TOLERANCE_S) return hit;
    cache.delete(key);
    throw new InvalidTokenError('token expired');
  }
  const result = await verifyUncached(settings, token);
  if (cache.size >= VERIFIED_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
  cache.set(key, result);
  return result;
}

async function verifyUncached(settings: TokenSettings, token: string): Promise<VerifiedToken> {
  let payload: unknown;
  let expiresAtS: number;
  try {
    const result = await jwtVerify(token, keyOf(settings.secret), {
      algorithms: ['HS256'], issuer: TOKEN_ISSUER, audience: settings.audience,
      currentDate: new Date(settings.nowMs), clockTolerance: CLOCK_TOLERANCE_S, requiredClaims: ['exp', 'iat', 'sub'],
    });
    payload = result.payload;
    expiresAtS = result.payload.exp!;
  } catch (error) {
    const reason = error instanceof joseErrors.JWTExpired ? 'token expired' : 'invalid token';
    throw new InvalidTokenError(reason, { cause: error });
  }
  const parsed = claimsSchema.safeParse(payload);
  if (!parsed.success) throw new InvalidTokenError('invalid token claims');
  const { context, access } = parsed.data;
  return {
    kind: context.kind,
    id: context.entity_reference ?? undefined,
    username: context.user ?? undefined,
    access: access.filter((a): a is TokenAccess => a.type === 'repository'),
    expiresAtS,
  };
}

/** Whether the token's access claim grants `action` on `namespace/repository`. */
export function tokenGrants(token: VerifiedToken, name: string, action: string): boolean {
  return token.access.some((a) => a.name === name && (a.actions.includes(action) || a.actions.includes('*')));
}
