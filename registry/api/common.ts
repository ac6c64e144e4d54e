/**
 * What every /api/v1 route shares: who is calling (Basic credentials, or an app token as bearer),
 * input validation with zod that answers Quay's 400 instead of throwing, and the permission checks
 * in Quay's words (401 for anonymous callers, 403 "Unauthorized" for signed-in ones, 404 after).
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { findNamespace, type NamespaceRow } from '../../shared/db/namespaces.ts';
import { isNamespaceAdmin, resolveRepositoryAccess, roleAtLeast, type RepositoryAccessInfo, type RepositoryRole } from '../../shared/db/permissions.ts';
import type { RepositoryRow } from '../../shared/db/repositories.ts';
import { verifyAppToken } from '../../shared/db/tokens.ts';
import { ANONYMOUS, type Principal } from '../auth/access.ts';
import { countAttempt, isSuperuser, nowMs, parseBasicAuthorization, verifyCredentials } from '../auth/credentials.ts';
import { subjectOf } from '../auth/grants.ts';
import { apiErrors, type ApiError } from '../errors.ts';

const principals = new WeakMap<FastifyRequest, Principal>();

/**
 * The caller of an API request: Basic credentials (user password, robot token, `$app` + app
 * token) or `Authorization: Bearer <app token>`; ANONYMOUS without a header; 401 when they fail.
 */
export async function apiPrincipalOf(request: FastifyRequest): Promise<Principal> {
  const cached = principals.get(request);
  if (cached) return cached;
  const deps = request.server.deps;
  const header = request.headers.authorization;
  let principal: Principal | undefined = ANONYMOUS;
  if (header) {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (bearer) {
      const owner = deps.config.quay.FEATURE_APP_SPECIFIC_TOKENS ? await verifyAppToken(deps.db, bearer[1]!, new Date(nowMs(deps))) : undefined;
      principal = owner && { kind: 'apptoken', id: owner.userId, username: owner.username, superuser: await isSuperuser(deps, owner.username) };
      countAttempt('oauth', principal !== undefined);
    } else {
      const credentials = parseBasicAuthorization(request);
      principal = credentials && await verifyCredentials(deps, credentials.username, credentials.password);
      countAttempt('basic', principal !== undefined);
    }
    if (!principal) throw apiErrors.unauthorized('Invalid credentials');
  }
  principals.set(request, principal);
  return principal;
}

/** The signed-in caller; 401 for anonymous requests. */
export async function requireSignedIn(request: FastifyRequest): Promise<Principal & { id: number; username: string }> {
  const principal = await apiPrincipalOf(request);
  if (principal.kind === 'anonymous' || principal.id === undefined || principal.username === undefined) throw apiErrors.unauthorized('Requires authentication');
  return principal as Principal & { id: number; username: string };
}

/** The signed-in human user (robots may not manage accounts, as in Quay); 401/403 otherwise. */
export async function requireUser(request: FastifyRequest): Promise<Principal & { id: number; username: string }> {
  const principal = await requireSignedIn(request);
  if (principal.kind === 'robot') throw apiErrors.forbidden('Robot accounts may not perform this operation');
  return principal;
}

/** 401 for anonymous callers, 403 for signed-in ones: the answer to a missing permission. */
export function denied(principal: Principal): ApiError {
  return principal.kind === 'anonymous' ? apiErrors.unauthorized('Requires authentication') : apiErrors.forbidden();
}

/** The repository and the caller's role, requiring at least `role`; 401/403, then 404 when it does not exist. */
export async function requireRepositoryRole(
  request: FastifyRequest, namespace: string, name: string, role: RepositoryRole,
): Promise<{ principal: Principal; repository: RepositoryRow; access: RepositoryAccessInfo }> {
  const principal = await apiPrincipalOf(request);
  const access = await resolveRepositoryAccess(request.server.deps.db, subjectOf(request.server.deps, principal), namespace, name);
  if (!roleAtLeast(access.role, role)) throw denied(principal);
  if (!access.repository) throw apiErrors.notFound();
  return { principal, repository: access.repository, access };
}

/** The live organization `name` administered by the caller; 401/403 when not an admin, 404 when absent. */
export async function requireOrganizationAdmin(request: FastifyRequest, name: string): Promise<{ principal: Principal & { id: number; username: string }; organization: NamespaceRow }> {
  const principal = await requireSignedIn(request);
  const organization = await findNamespace(request.server.deps.db, name);
  if (organization?.organization && await isNamespaceAdmin(request.server.deps.db, subjectOf(request.server.deps, principal), organization.id)) {
    return { principal, organization };
  }
  // Only admins learn whether the organization exists.
  if (!principal.superuser) throw apiErrors.forbidden();
  throw apiErrors.notFound();
}

/** Parses `value` with `schema`; a failure is Quay's 400 invalid_request naming each field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what = 'request'): z.output<S> {
  // NUL characters and invalid UTF-8 never get here: registry/input-guard.ts refuses them at the edge.
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message));
  throw apiErrors.badRequest(`Invalid ${what}: ${issues.join('; ')}`, issues);
}

/** Query-string booleans as Quay's truthy_bool reads them. */
export const truthyBool = z.union([z.boolean(), z.string()]).transform((v) => typeof v === 'boolean' ? v : ['true', '1', 'yes', 'on'].includes(v.toLowerCase()));

/** Route params naming one repository. */
export const repositoryParams = z.object({ namespace: z.string().min(1), repository: z.string().min(1) });

/** The client address for action logs. */
export function clientIp(request: FastifyRequest): string {
  return request.ip;
}
