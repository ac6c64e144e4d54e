/**
 * Docker token-auth scopes (`repository:<namespace>/<repo>:<action>[,<action>...]`) and the
 * `WWW-Authenticate` challenge that tells a client where to get a token for one.
 */
import type { Config } from '../../shared/config/index.ts';
import { isValidNamespaceName } from '../../shared/db/namespaces.ts';
import { isValidRepositoryName } from '../../shared/db/repositories.ts';
import { ApiError, OciError } from '../errors.ts';
import type { RepositoryAction } from './access.ts';

/** Actions a scope may ask for; `*` means every action on the repository. */
export const SCOPE_ACTIONS = ['pull', 'push', 'delete', '*'] as const;
export type ScopeAction = (typeof SCOPE_ACTIONS)[number];

/** A parsed repository scope. */
export interface RepositoryScope {
  readonly namespace: string;
  readonly repository: string;
  /** The name as the client wrote it (with the hostname prefix when it sent one). */
  readonly requestedName: string;
  readonly actions: ScopeAction[];
}

/**
 * Parses one `scope` parameter. Returns undefined for scopes of other resource types (e.g.
 * `registry:catalog:*`), which grant nothing here. Unknown actions are dropped (downscoping, as the
 * token spec says); an unparsable scope is a 400 (Quay: "Unable to decode repository and
 * actions"), an invalid repository name NAME_INVALID.
 */
export function parseScope(scope: string, serverHostname: string): RepositoryScope | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) throw new ApiError(400, 'invalid_request', `Unable to decode repository and actions: ${scope}`);
  const type = scope.slice(0, first);
  if (type !== 'repository' && !type.startsWith('repository(')) return undefined;
  const requestedName = scope.slice(first + 1, last);
  const actionList = scope.slice(last + 1).split(',');
  if (requestedName === '' || actionList.some((a) => a === '')) {
    throw new ApiError(400, 'invalid_request', `Unable to decode repository and actions: ${scope}`);
  }
  const actions = actionList.filter((a): a is ScopeAction => (SCOPE_ACTIONS as readonly string[]).includes(a));
  const { namespace, repository } = splitRepositoryName(requestedName, serverHostname);
  return { namespace, repository, requestedName, actions: [...new Set(actions)] };
}

/** Splits `[host/]namespace/repo` into its parts; NAME_INVALID when it is not a valid name. */
export function splitRepositoryName(name: string, serverHostname: string): { namespace: string; repository: string } {
  const withoutHost = name.startsWith(`${serverHostname}/`) ? name.slice(serverHostname.length + 1) : name;
  const slash = withoutHost.indexOf('/');
  const namespace = slash > 0 ? withoutHost.slice(0, slash) : '';
  const repository = slash > 0 ? withoutHost.slice(slash + 1) : '';
  if (!isValidNamespaceName(namespace) || !isValidRepositoryName(repository)) {
    throw new OciError('NAME_INVALID', `Invalid repository name: ${name}`);
  }
  return { namespace, repository };
}

/** The scope a client needs for `action` on `namespace/repository` (push implies pull, as Docker asks). */
export function scopeFor(namespace: string, repository: string, action: RepositoryAction): string {
  const actions = action === 'push' ? 'pull,push' : action;
  return `repository:${namespace}/${repository}:${actions}`;
}

/**
 * The `WWW-Authenticate` value for a 401 from the registry:
 * `Bearer realm="<scheme>://<host>/v2/auth",service="<host>"[,scope="..."]`.
 */
export function bearerChallenge(config: Config, scope?: string, error?: 'insufficient_scope' | 'invalid_token'): string {
  const host = config.quay.SERVER_HOSTNAME;
  const base = `Bearer realm="${config.quay.PREFERRED_URL_SCHEME}://${host}/v2/auth",service="${host}"`;
  return `${base}${scope ? `,scope="${scope}"` : ''}${error ? `,error="${error}"` : ''}`;
}

/** A 401 UNAUTHORIZED carrying the challenge for `scope` (and the RFC 6750 `error`, when given). */
export function unauthorized(config: Config, scope?: string, message?: string, error?: 'insufficient_scope' | 'invalid_token'): OciError {
  return new OciError('UNAUTHORIZED', message ?? 'access to the requested resource is not authorized', null, {
    headers: { 'WWW-Authenticate': bearerChallenge(config, scope, error) },
  });
}
