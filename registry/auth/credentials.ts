/**
 * Verifies a username/password pair the way Quay's validate_credentials does:
 * - username `$app`: the password is an app-specific token (FEATURE_APP_SPECIFIC_TOKENS);
 * - a username with `+`: a robot (`ns+short`), the password is its token;
 * - anything else: a user and its password.
 * Every attempt is counted in quay_authentication_attempts_total.
 */
import type { FastifyRequest } from 'fastify';
import { getUserPasswordHash, hasSuperuserFlag } from '../../shared/db/namespaces.ts';
import { verifyPassword } from '../../shared/db/passwords.ts';
import { verifyAppToken, verifyRobotToken } from '../../shared/db/tokens.ts';
import { client, metric } from '../../shared/metrics/index.ts';
import type { RegistryDeps } from '../deps.ts';
import type { Principal } from './access.ts';
import { PasswordCache } from './password-cache.ts';

/** Quay's counter; `auth_kind` is basic (Basic header), oauth (bearer API token) or credentials. */
export const authenticationAttempts = metric('quay_authentication_attempts_total', () => new client.Counter({
  name: 'quay_authentication_attempts_total',
  help: 'number of authentication attempts across the registry and API',
  labelNames: ['auth_kind', 'success'],
}));

/** Records one attempt with Quay's capitalised booleans. */
export function countAttempt(kind: 'basic' | 'oauth' | 'credentials', success: boolean): void {
  authenticationAttempts.inc({ auth_kind: kind, success: success ? 'True' : 'False' });
}

/**
 * Whether `username` is a superuser: listed in SUPER_USERS, or flagged in the database by
 * `quayfleet users create --superuser`. Robots never are.
 */
export async function isSuperuser(deps: RegistryDeps, username: string): Promise<boolean> {
  if (username.includes('+')) return false;
  return deps.config.quay.SUPER_USERS.includes(username) || hasSuperuserFlag(deps.db, username);
}

/** The wall clock of the front end in ms (injectable through deps for tests). */
export function nowMs(deps: RegistryDeps): number {
  return deps.now ? deps.now() : Date.now();
}

/** The principal `username`/`password` identify, or undefined when they do not match anything. */
export async function verifyCredentials(deps: RegistryDeps, username: string, password: string): Promise<Principal | undefined> {
  // NUL cannot reach Postgres text; no stored name or token contains one.
  if (username === '' || password === '' || username.includes('\u0000') || password.includes('\u0000')) return undefined;
  if (username === '$app') {
    if (!deps.config.quay.FEATURE_APP_SPECIFIC_TOKENS) return undefined;
    const owner = await verifyAppToken(deps.db, password, new Date(nowMs(deps)));
    return owner && { kind: 'apptoken', id: owner.userId, username: owner.username, superuser: await isSuperuser(deps, owner.username) };
  }
  if (username.includes('+')) {
    const id = await verifyRobotToken(deps.db, username, password);
    return id === undefined ? undefined : { kind: 'robot', id, username, superuser: false };
  }
  const user = await getUserPasswordHash(deps.db, username);
  const ok = await passwordMatches(deps, user?.password_hash ?? null, password);
  return ok && user ? { kind: 'user', id: user.id, username, superuser: await isSuperuser(deps, username) } : undefined;
}

const verifiedPasswords = new PasswordCache();

async function passwordMatches(deps: RegistryDeps, stored: string | null, password: string): Promise<boolean> {
  // Hash even for an unknown user, so response time does not tell which usernames exist.
  const hash = stored ?? UNKNOWN_USER_HASH;
  const now = nowMs(deps);
  if (stored && verifiedPasswords.has(hash, password, now)) return true;
  const ok = await verifyPassword(password, hash);
  if (ok && stored) verifiedPasswords.add(hash, password, now);
  return ok && stored !== null;
}

// A well-formed hash of a random password: verifying against it costs what a real check costs.
const UNKNOWN_USER_HASH = '$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$' + 'A'.repeat(86);

/** The username and password of a `Basic` Authorization header, or undefined when there is none or it is malformed. */
export function parseBasicAuthorization(request: FastifyRequest): { username: string; password: string } | undefined {
  const header = request.headers.authorization;
  const match = header ? /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
