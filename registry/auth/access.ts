/**
 * The authorization contract the /v2 and /api/v1 routes use. Implemented by the auth module
 * (registry/auth/*): bearer tokens issued by /v2/auth carry the granted repository actions, as in
 * Docker token auth; the Quay API takes a Basic credential or an app token.
 *
 * Glossary:
 * - principal: who is calling (anonymous, a user, a robot, a user through an app token).
 * - action: `pull`, `push`, `delete` on one repository (`*` grants all three).
 * - scope: `repository:<namespace>/<repo>:<actions>` as Docker clients request it.
 *
 * Revocation: a request needs both the token's grant and, at request time, the role in the
 * database (one query that also loads the repository). A revoked permission, a disabled user or a
 * deleted robot therefore loses access at once, not when the token expires (Quay trusts the token).
 */
import type { FastifyRequest } from 'fastify';
import { RepositoryState, type RepositoryRow } from '../../shared/db/repositories.ts';
import {
  resolveRepositoryAccess, resolveRepositoryAccessWith, roleAtLeast, visibleRepositoryCondition, type AttachedLookup, type PermissionSubject, type RepositoryRole,
} from '../../shared/db/permissions.ts';
import { OciError } from '../errors.ts';
import { isSuperuser, nowMs } from './credentials.ts';
import { subjectOf } from './grants.ts';
import { scopeFor, unauthorized } from './scope.ts';
import { InvalidTokenError, tokenGrants, verifyRegistryToken, type VerifiedToken } from './token.ts';

export type RepositoryAction = 'pull' | 'push' | 'delete';

export interface Principal {
  readonly kind: 'anonymous' | 'user' | 'robot' | 'apptoken';
  /** Namespace id of the user or robot; undefined for anonymous. */
  readonly id?: number;
  /** Username (`ns+robot` for robots); undefined for anonymous. */
  readonly username?: string;
  /** Listed in SUPER_USERS or flagged superuser in the database. */
  readonly superuser: boolean;
}

export const ANONYMOUS: Principal = { kind: 'anonymous', superuser: false };

/** The keys Quay's track_and_log adds to a registry action log for who acted: `username`, and `is_robot` for robots. */
export function actorLogMetadata(principal: Principal): { username?: string; is_robot?: true } {
  return {
    ...(principal.username === undefined ? {} : { username: principal.username }),
    ...(principal.kind === 'robot' ? { is_robot: true as const } : {}),
  };
}

/** The repository a request may act on, and who acts. */
export interface RepositoryAccess {
  readonly principal: Principal;
  readonly repository: RepositoryRow;
}

/** The role each action needs (Quay: pull = read, push and manifest/tag delete = write). */
export const ROLE_FOR_ACTION: Record<RepositoryAction, RepositoryRole> = { pull: 'read', push: 'write', delete: 'write' };

const READ_ONLY_REGISTRY_MESSAGE = 'System is currently read-only. Pulls will succeed but all write operations are currently suspended.';

// Verified once per request: principalOf and authorizeRepository may both be called.
const verifiedTokens = new WeakMap<FastifyRequest, VerifiedToken | null>();

/** The bearer token of the request, verified; null when it sent none; 401 when it is invalid or expired. */
export async function bearerTokenOf(request: FastifyRequest): Promise<VerifiedToken | null> {
  const cached = verifiedTokens.get(request);
  if (cached !== undefined) return cached;
  const deps = request.server.deps;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  let token: VerifiedToken | null = null;
  if (match) {
    try {
      token = await verifyRegistryToken({ secret: deps.tokenSecret, audience: deps.config.quay.SERVER_HOSTNAME, nowMs: nowMs(deps) }, match[1]!);
    } catch (error) {
      if (error instanceof InvalidTokenError) throw unauthorized(deps.config, undefined, error.message, 'invalid_token');
      throw error;
    }
  }
  verifiedTokens.set(request, token);
  return token;
}

/** Who the request's bearer token names; ANONYMOUS without one; 401 (with challenge) for an invalid one. */
export async function principalOf(request: FastifyRequest): Promise<Principal> {
  const token = await bearerTokenOf(request);
  if (!token || token.kind === 'anonymous' || token.username === undefined) return ANONYMOUS;
  const superuser = token.kind !== 'robot' && await isSuperuser(request.server.deps, token.username);
  return { kind: token.kind, id: token.id, username: token.username, superuser };
}

/** What config and the principal say for permission queries. */
export function permissionSubject(request: FastifyRequest, principal: Principal): PermissionSubject {
  return subjectOf(request.server.deps, principal);
}

/**
 * Authorizes `action` on `namespace/repoName` for this request and returns the repository.
 * `attached` (a lookup on the repository, e.g. the manifest a GET serves) runs in the same
 * statement and is returned only when the request is authorized. Order matters so existence
 * never leaks: credentials and grants are checked before the repository's existence, then NAME_UNKNOWN, then the write refusals (read-only registry,
 * READ_ONLY, MIRROR except its robot). A missing grant is a 401 with the challenge for anonymous
 * callers and for a token that does not name this repository at all (the client asks for a new
 * token, as Docker clients do); it is 403 DENIED when the token names the repository but was
 * downscoped, or when the role was revoked since (a new token would not help).
 */
export async function authorizeRepository<T extends object = never>(
  request: FastifyRequest, namespace: string, repoName: string, action: RepositoryAction, attached?: AttachedLookup,
): Promise<RepositoryAccess & { attached: T | undefined }> {
  const { config, db } = request.server.deps;
  const token = await bearerTokenOf(request);
  // The database's superuser flag is read by the access query itself (one round trip per request):
  // the principal starts with what config says and takes the query's answer.
  const claimed = tokenPrincipal(token, config.quay.SUPER_USERS);
  const scope = scopeFor(namespace, repoName, action);
  const { access: info, attached: row } = await resolveRepositoryAccessWith<T>(db, permissionSubject(request, claimed), namespace, repoName, attached);
  const principal: Principal = claimed.kind === 'anonymous' ? claimed : { ...claimed, superuser: info.superuser };
  // Anonymous pulls of public repositories work without a token when anonymous access is on.
  const anonymousPull = !token && action === 'pull' && config.quay.FEATURE_ANONYMOUS_ACCESS && roleAtLeast(info.role, 'read');
  const granted = anonymousPull || (token !== null && tokenGrants(token, `${namespace}/${repoName}`, action));
  if (!granted && principal.kind !== 'anonymous' && token && !token.access.some((a) => a.name === `${namespace}/${repoName}`)) {
    // A token for other repositories: the client should fetch one for this scope (Docker's flow).
    throw unauthorized(config, scope, undefined, 'insufficient_scope');
  }
  if (!granted || !roleAtLeast(info.role, ROLE_FOR_ACTION[action])) {
    if (principal.kind === 'anonymous') throw unauthorized(config, scope);
    throw new OciError('DENIED', undefined, null);
  }
  const repository = info.repository;
  if (!repository) throw new OciError('NAME_UNKNOWN', 'repository name not known to registry', { name: `${namespace}/${repoName}` });
  if (action !== 'pull') refuseWrites(config.quay.REGISTRY_STATE, repository, info.mirrorRobotId, principal);
  return { principal, repository, attached: row };
}

/** The principal a verified token names, superuser as far as config says (SUPER_USERS; robots never). */
function tokenPrincipal(token: VerifiedToken | null, superUsers: readonly string[]): Principal {
  if (!token || token.kind === 'anonymous' || token.username === undefined) return ANONYMOUS;
  const superuser = token.kind !== 'robot' && !token.username.includes('+') && superUsers.includes(token.username);
  return { kind: token.kind, id: token.id, username: token.username, superuser };
}

/** Throws DENIED with the reason when writes to `repository` are refused right now. */
function refuseWrites(registryState: string, repository: RepositoryRow, mirrorRobotId: number | null, principal: Principal): void {
  if (registryState === 'readonly') throw new OciError('DENIED', READ_ONLY_REGISTRY_MESSAGE);
  switch (repository.state) {
    case RepositoryState.READ_ONLY:
      throw new OciError('DENIED', 'Repository is read-only: pushes and deletes are not allowed');
    case RepositoryState.MIRROR:
      if (principal.kind === 'robot' && principal.id !== undefined && principal.id === mirrorRobotId) return;
      throw new OciError('DENIED', 'Repository is a mirror: only its mirroring robot may push to or delete from it');
    case RepositoryState.ORG_MIRROR:
      throw new OciError('DENIED', 'Repository is mirrored from an organization mirror and is read-only');
    case RepositoryState.MARKED_FOR_DELETION:
      throw new OciError('NAME_UNKNOWN', 'repository name not known to registry');
    default:
  }
}

/**
 * A SQL condition on `repository r JOIN namespace n` that keeps only repositories `principal` may
 * see (for `_catalog` and listings); its parameters start at `$<firstParam>`.
 */
export function visibleRepositoriesFilter(request: FastifyRequest, principal: Principal, firstParam: number): { sql: string; params: unknown[] } {
  return visibleRepositoryCondition(permissionSubject(request, principal), firstParam);
}

/** Whether `principal` may see `namespace/repoName` (read role). */
export async function canListRepository(request: FastifyRequest, principal: Principal, namespace: string, repoName: string): Promise<boolean> {
  const info = await resolveRepositoryAccess(request.server.deps.db, permissionSubject(request, principal), namespace, repoName);
  return info.repository !== undefined && roleAtLeast(info.role, 'read');
}
