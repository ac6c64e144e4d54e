/**
 * `GET /v2/auth`: Docker token auth as Quay's v2auth does it. Basic credentials (user password,
 * robot token, `$app` + app token) or none (anonymous); each requested scope is downscoped to the
 * actions the principal holds; a push scope on a repository that does not exist creates it
 * (private) when the principal may create in that namespace.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OciError } from '../errors.ts';
import { ANONYMOUS, type Principal } from './access.ts';
import { countAttempt, nowMs, parseBasicAuthorization, verifyCredentials } from './credentials.ts';
import { grantScope } from './grants.ts';
import { parseScope, unauthorized } from './scope.ts';
import { signRegistryToken, type TokenAccess } from './token.ts';

/** Registers GET /v2/auth. */
export async function registerAuthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/v2/auth', async (request, reply) => {
    const deps = app.deps;
    const principal = await authenticate(request);
    const scopes = scopeParams(request.query);
    if (principal.kind === 'anonymous' && (scopes.length === 0 || !deps.config.quay.FEATURE_ANONYMOUS_ACCESS)) {
      // A login (no scope) or anonymous access turned off: credentials are required.
      throw unauthorized(deps.config);
    }
    const access: TokenAccess[] = [];
    for (const scopeText of scopes) {
      const scope = parseScope(scopeText, deps.config.quay.SERVER_HOSTNAME);
      if (!scope) continue;
      const actions = await grantScope(deps, principal, scope, request.ip);
      access.push({ type: 'repository', name: `${scope.namespace}/${scope.repository}`, actions });
    }
    const issued = await signRegistryToken(
      { secret: deps.tokenSecret, audience: deps.config.quay.SERVER_HOSTNAME, nowMs: nowMs(deps) }, principal, access);
    reply.header('Cache-Control', 'no-store');
    return {
      token: issued.token, access_token: issued.token, expires_in: issued.expiresInS,
      issued_at: new Date(issued.issuedAtS * 1000).toISOString(),
    };
  });
}

/** The principal of the Basic credentials, ANONYMOUS without any; 401 when they do not match. */
async function authenticate(request: FastifyRequest): Promise<Principal> {
  const deps = request.server.deps;
  if (!request.headers.authorization) return ANONYMOUS;
  const credentials = parseBasicAuthorization(request);
  const principal = credentials ? await verifyCredentials(deps, credentials.username, credentials.password) : undefined;
  countAttempt('basic', principal !== undefined);
  if (!principal) throw new OciError('UNAUTHORIZED', 'Invalid username or password', null, { headers: { 'WWW-Authenticate': `Basic realm="${deps.config.quay.SERVER_HOSTNAME}"` } });
  return principal;
}

/** The `scope` query parameters (repeatable; Docker also space-separates several in one). */
function scopeParams(query: unknown): string[] {
  const raw = (query as Record<string, unknown> | undefined)?.scope;
  const values = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return values.filter((v): v is string => typeof v === 'string').flatMap((v) => v.split(' ')).filter((v) => v !== '');
}
