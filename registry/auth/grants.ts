/**
 * What a token may grant for one scope (Quay's `_authorize_or_downscope_request`): the subset of
 * the requested actions the principal holds, never an error for a missing permission. A push scope
 * on a repository that does not exist creates it, private, when the principal may create there.
 */
import { withTransaction } from '../../shared/db/pool.ts';
import { logAction } from '../../shared/db/logs.ts';
import { resolveRepositoryAccess, roleAtLeast, setUserRepositoryPermission, type PermissionSubject, type RepositoryAccessInfo } from '../../shared/db/permissions.ts';
import { createRepository, RepositoryExistsError, type RepositoryRow } from '../../shared/db/repositories.ts';
import type { RegistryDeps } from '../deps.ts';
import { OciError } from '../errors.ts';
import type { Principal } from './access.ts';
import type { RepositoryScope } from './scope.ts';

/** Permission-query subject of `principal` under this config. */
export function subjectOf(deps: RegistryDeps, principal: Principal): PermissionSubject {
  return { principalId: principal.id ?? null, superuser: principal.superuser, anonymousAccess: deps.config.quay.FEATURE_ANONYMOUS_ACCESS };
}

/** The actions of `scope` granted to `principal`, creating the repository on push when allowed. */
export async function grantScope(deps: RegistryDeps, principal: Principal, scope: RepositoryScope, ip: string): Promise<string[]> {
  const subject = subjectOf(deps, principal);
  let info = await resolveRepositoryAccess(deps.db, subject, scope.namespace, scope.repository);
  if (info.namespaceId !== null && !info.namespaceEnabled) {
    throw new OciError('DENIED', `Namespace ${scope.namespace} has been disabled. Please contact a system administrator.`);
  }
  const wants = new Set(scope.actions);
  if (wants.has('push') && mayCreateOnPush(deps, principal, info)) {
    await createRepositoryFor(deps, principal, { namespaceId: info.namespaceId!, name: scope.repository, visibility: 'private', ip }, info);
    info = await resolveRepositoryAccess(deps.db, subject, scope.namespace, scope.repository);
  }
  const exists = info.repository !== undefined;
  const granted: string[] = [];
  if (wants.has('pull') && roleAtLeast(info.role, 'read')) granted.push('pull');
  if (wants.has('push') && exists && roleAtLeast(info.role, 'write')) granted.push('push');
  if (wants.has('delete') && exists && roleAtLeast(info.role, 'write')) granted.push('delete');
  if (wants.has('*') && exists && roleAtLeast(info.role, 'admin')) granted.push('*');
  return granted;
}

function mayCreateOnPush(deps: RegistryDeps, principal: Principal, info: RepositoryAccessInfo): boolean {
  return info.repository === undefined && info.namespaceId !== null && info.canCreate
    && principal.kind !== 'anonymous' && deps.config.quay.REGISTRY_STATE !== 'readonly';
}

/**
 * Creates a repository on behalf of `principal` in one transaction: the row, an explicit admin
 * grant for a creator who would not otherwise administer it (an org `creator` team member, as
 * Quay does), and the `create_repo` action log. A concurrent creation of the same name is not an
 * error when `ifAbsent` is set (the token path); the API wants RepositoryExistsError.
 */
export async function createRepositoryFor(
  deps: RegistryDeps, principal: Principal,
  input: { namespaceId: number; name: string; visibility: 'public' | 'private'; description?: string | null; ip?: string },
  before: RepositoryAccessInfo, options: { ifAbsent?: boolean } = { ifAbsent: true },
): Promise<RepositoryRow | undefined> {
  try {
    return await withTransaction(deps.db, async (tx) => {
      const repository = await createRepository(tx, input);
      if (principal.id !== undefined && !roleAtLeast(before.role, 'admin')) {
        await setUserRepositoryPermission(tx, repository.id, principal.id, 'admin');
      }
      await logAction(tx, deps.config.quay, {
        kind: 'create_repo', namespace: { id: input.namespaceId, name: repository.namespace }, performerId: principal.id ?? null, repositoryId: repository.id,
        ip: input.ip ?? null, metadata: { repo: repository.name, namespace: repository.namespace },
      });
      return repository;
    });
  } catch (error) {
    if (error instanceof RepositoryExistsError && options.ifAbsent) return undefined;
    throw error;
  }
}
