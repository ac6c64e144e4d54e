/**
 * Runs the authorization matrix: every route of the app times every principal. A route without a
 * row, a row for a route that no longer exists, a principal let through that should not be (or
 * refused that should not be), and any 5xx are reported.
 */
import { PRINCIPALS, type PrincipalName, type SecurityFixture } from './fixture.ts';
import { MATRIX, type MatrixRequest } from './matrix.ts';
import { listRoutes, routeKey } from './routes.ts';

/** What the matrix found. */
export interface MatrixResult {
  routes: number;
  /** (route case, principal) pairs sent. */
  checked: number;
  missingRows: string[];
  staleRows: string[];
  mismatches: string[];
}

/** Sends `request` as `who`; the status. */
async function send(fx: SecurityFixture, who: PrincipalName, request: MatrixRequest, tokens: Map<PrincipalName, string | undefined>): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = { ...request.headers };
  let authorization: string | undefined;
  if (request.auth === 'api') authorization = fx.apiAuth(who);
  else if (request.auth === 'v2') {
    if (!tokens.has(who)) tokens.set(who, await fx.v2Token(who, ['acme/app', 'acme/mirrored']));
    const token = tokens.get(who);
    authorization = token && `Bearer ${token}`;
  } else if (typeof request.auth === 'object') authorization = request.auth.header;
  if (authorization) headers.authorization = authorization;
  let payload: string | Buffer | undefined = request.payload;
  if (request.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    payload = JSON.stringify(request.body);
  }
  const response = await fx.t.app.inject({ method: request.method, url: request.url, headers, ...(payload === undefined ? {} : { payload }) });
  return { status: response.statusCode, body: response.body };
}

/**
 * The principals a case is checked with: all of them, or in the short form three (anonymous, one
 * let through and one refused), rotating with `turn` so every principal takes part.
 */
function principalsFor(allow: readonly PrincipalName[], short: boolean, turn: number): readonly PrincipalName[] {
  if (!short) return PRINCIPALS;
  const allowed = PRINCIPALS.filter((p) => allow.includes(p) && p !== 'anonymous');
  const refused = PRINCIPALS.filter((p) => !allow.includes(p) && p !== 'anonymous');
  const picks = new Set<PrincipalName>(['anonymous']);
  if (allowed.length) picks.add(allowed[turn % allowed.length]!);
  if (refused.length) picks.add(refused[turn % refused.length]!);
  return [...picks];
}

/** Checks every route against every principal (`short`: against a rotating four, see principalsFor). */
export async function checkMatrix(fx: SecurityFixture, options: { short: boolean }): Promise<MatrixResult> {
  const routes = listRoutes(fx.t.app).filter((r) => r.method !== 'HEAD');
  const keys = new Set(routes.map(routeKey));
  const result: MatrixResult = {
    routes: routes.length, checked: 0, mismatches: [],
    missingRows: [...keys].filter((k) => !MATRIX[k]), staleRows: Object.keys(MATRIX).filter((k) => !keys.has(k)),
  };
  const tokens = new Map<PrincipalName, string | undefined>();
  let turn = 0;
  for (const key of keys) {
    for (const [index, matrixCase] of (MATRIX[key] ?? []).entries()) {
      for (const who of principalsFor(matrixCase.allow, options.short, turn++)) {
        const request = await matrixCase.request(fx, who);
        const { status, body } = await send(fx, who, request, tokens);
        result.checked++;
        const refused = status === 401 || status === 403;
        const allowed = matrixCase.allow.includes(who);
        const where = `${key} [case ${index}: ${request.method} ${request.url.slice(0, 80)}] as ${who}`;
        if (status >= 500) result.mismatches.push(`${where}: ${status} ${body.slice(0, 160)}`);
        else if (allowed && refused) result.mismatches.push(`${where}: refused (${status}) but should be allowed: ${body.slice(0, 160)}`);
        else if (!allowed && !refused) result.mismatches.push(`${where}: allowed (${status}) but should be refused: ${body.slice(0, 160)}`);
      }
    }
  }
  return result;
}
