/**
 * The fuzz families: each turns generated values into one request against the target. A family
 * may add its own property (a forged token must be refused) to the common one in target.ts.
 */
import fc from 'fast-check';
import { basicAuth } from '../../helpers/registry.ts';
import { fillRoute, listRoutes } from '../security/routes.ts';
import {
  anyText, apiBody, contentRangeHeader, digest, manifestBody, mediaType, queryString, rangeHeader, reference, repositoryName,
} from './arbitraries.ts';
import { buildJwt, jwtRecipe, mustBeRefused } from './jwt.ts';
import { CLAIR_PSK, PASSWORD, type FuzzTarget } from './target.ts';

/** One generated request. */
export interface FuzzRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
  /** Set by families with a stronger property: the request must be refused (401/403/404). */
  mustRefuse?: boolean;
}

/** A family: a name and the arbitrary of its requests. */
export interface Family {
  readonly name: string;
  readonly requests: fc.Arbitrary<FuzzRequest>;
}

const method = fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE') as fc.Arbitrary<FuzzRequest['method']>;

/** Header values Node's HTTP parser would let through (light-my-request refuses the others itself). */
function headerSafe(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, '').replace(/[^\u0000-\u00ff]/g, '?');
}

function encodePath(path: string): string {
  return path.split('/').map((s) => (/^[A-Za-z0-9._~%:+-]*$/.test(s) ? s : encodeURIComponent(s))).join('/');
}

/** The families against `target`. */
export function families(target: FuzzTarget): Family[] {
  const owner = { authorization: `Bearer ${target.ownerToken}` };
  const v2Auth = fc.constantFrom<Record<string, string>>(owner, owner, owner, {}, { authorization: 'Bearer x.y.z' }, { authorization: basicAuth('owner', PASSWORD) });
  const apiRoutes = listRoutes(target.t.app).filter((r) => r.url.startsWith('/api/v1') && r.method !== 'HEAD');
  const apiAuth = fc.constantFrom<Record<string, string>>(
    { authorization: basicAuth('owner', PASSWORD) }, { authorization: basicAuth('root', PASSWORD) }, { authorization: basicAuth('root', PASSWORD) },
    { authorization: basicAuth('outsider', PASSWORD) }, {},
  );
  const params = fc.record({
    namespace: fc.oneof(fc.constantFrom('acme', 'owner', 'nobody'), anyText),
    repository: fc.oneof(fc.constantFrom('app', 'missing'), anyText),
    org: fc.oneof(fc.constantFrom('acme', 'owner', 'nobody'), anyText),
    tag: fc.oneof(fc.constant('latest'), reference),
    username: fc.oneof(fc.constantFrom('outsider', 'acme+bot', 'root', 'owner'), anyText),
    team: fc.oneof(fc.constantFrom('owners', 'devs'), anyText),
    member: fc.oneof(fc.constantFrom('outsider', 'acme+bot'), anyText),
    shortname: fc.oneof(fc.constantFrom('bot', 'newbot'), anyText),
    uuid: fc.oneof(fc.uuid(), anyText),
    quota_id: fc.oneof(fc.constantFrom('1', '2', '0', '-1', '1.5', '99999999999999999999'), anyText),
    limit_id: fc.oneof(fc.constantFrom('1', '2', '0', '-1'), anyText),
    email: fc.oneof(fc.emailAddress(), anyText),
    file: fc.oneof(fc.uuid(), anyText),
  });

  return [
    {
      name: 'v2 paths and references',
      requests: fc.record({
        method, name: repositoryName, reference, auth: v2Auth, query: queryString,
        kind: fc.constantFrom('manifests', 'blobs', 'blobs/uploads', 'tags/list', 'referrers', '_catalog', ''),
      }).map(({ method: m, name, reference: ref, auth, query, kind }) => {
        const tail = kind === 'tags/list' || kind === '' ? kind : kind === '_catalog' ? '' : `${kind}/${ref}`;
        const path = kind === '_catalog' ? '/v2/_catalog' : `/v2/${encodePath(name)}/${encodePath(tail)}`;
        return { method: m, url: query ? `${path}?${query}` : path, headers: { ...auth } };
      }),
    },
    {
      name: 'digests (blobs, referrers, mounts)',
      requests: fc.record({ method, digest, auth: v2Auth, where: fc.constantFrom('blobs', 'referrers', 'manifests', 'mount', 'complete') })
        .map(({ method: m, digest: d, auth, where }) => {
          const e = encodeURIComponent(d);
          if (where === 'mount') return { method: 'POST' as const, url: `/v2/acme/app/blobs/uploads/?mount=${e}&from=owner/own`, headers: { ...auth } };
          if (where === 'complete') return { method: 'POST' as const, url: `/v2/acme/app/blobs/uploads/?digest=${e}`, headers: { ...auth, 'content-type': 'application/octet-stream' }, payload: 'x' };
          return { method: m, url: `/v2/acme/app/${where}/${encodePath(d)}`, headers: { ...auth } };
        }),
    },
    {
      name: 'Range on a blob GET',
      requests: fc.record({ range: rangeHeader, head: fc.boolean(), ifRange: fc.option(anyText) }).map(({ range, head, ifRange }) => ({
        method: head ? 'HEAD' as const : 'GET' as const, url: `/v2/acme/app/blobs/${target.blobDigest}`,
        headers: { ...owner, range: headerSafe(range), ...(ifRange === null ? {} : { 'if-range': headerSafe(ifRange) }) },
      })),
    },
    {
      name: 'Content-Range and bodies on upload sessions',
      requests: fc.record({
        m: fc.constantFrom('PATCH', 'PATCH', 'PUT', 'GET', 'DELETE') as fc.Arbitrary<FuzzRequest['method']>,
        range: fc.option(contentRangeHeader), type: fc.option(mediaType), body: fc.uint8Array({ maxLength: 64 }),
        uuid: fc.oneof(fc.constant('session'), fc.uuid(), anyText), digest: fc.option(digest),
      }).map(({ m, range, type, body, uuid, digest: d }) => {
        const base = uuid === 'session' ? target.uploadLocation : `/v2/acme/app/blobs/uploads/${encodeURIComponent(uuid)}`;
        const url = d === null ? base : `${base}${base.includes('?') ? '&' : '?'}digest=${encodeURIComponent(d)}`;
        const headers: Record<string, string> = { ...owner };
        if (range !== null) headers['content-range'] = headerSafe(range);
        if (type !== null) headers['content-type'] = headerSafe(type);
        return { method: m, url, headers, payload: Buffer.from(body) };
      }),
    },
    {
      name: 'manifests (PUT bodies, Content-Type, Accept)',
      requests: fc.record({
        body: manifestBody, type: mediaType, accept: mediaType, ref: fc.oneof(fc.constant('fuzzed'), reference),
        put: fc.boolean(), existing: fc.constantFrom('latest', target.manifestDigest),
      }).map(({ body, type, accept, ref, put, existing }) => (put
        ? { method: 'PUT' as const, url: `/v2/acme/app/manifests/${encodePath(ref)}`, headers: { ...owner, 'content-type': headerSafe(type) }, payload: body }
        : { method: 'GET' as const, url: `/v2/acme/app/manifests/${existing}`, headers: { ...owner, accept: headerSafe(accept) } })),
    },
    {
      name: 'Quay API bodies',
      requests: fc.record({ route: fc.constantFrom(...apiRoutes), values: params, auth: apiAuth, body: fc.option(apiBody), type: fc.option(mediaType), query: queryString })
        .map(({ route, values, auth, body, type, query }) => {
          const path = fillRoute(route.url, values);
          const headers: Record<string, string> = { ...auth, 'content-type': type === null ? 'application/json' : headerSafe(type) };
          return { method: route.method as FuzzRequest['method'], url: query ? `${path}?${query}` : path, headers, ...(body === null ? {} : { payload: body }) };
        }),
    },
    {
      name: 'registry JWTs',
      requests: fc.record({ recipe: jwtRecipe(target.audience), where: fc.constantFrom('/v2/', '/v2/acme/app/manifests/latest', '/v2/acme/app/tags/list', '/v2/_catalog', '/v2/acme/app/blobs/uploads/') })
        .map(({ recipe, where }) => ({
          method: where.endsWith('uploads/') ? 'POST' as const : 'GET' as const, url: where,
          headers: { authorization: headerSafe(`Bearer ${buildJwt(recipe, target.t.deps.tokenSecret)}`) },
          // A registry token must verify; every recipe but the right one is refused.
          mustRefuse: mustBeRefused(recipe),
        })),
    },
    {
      name: 'token endpoint (/v2/auth)',
      requests: fc.record({ scope: fc.array(fc.oneof(fc.constant('repository:acme/app:pull,push'), anyText, repositoryName.map((n) => `repository:${n}:*`)), { maxLength: 3 }),
        auth: fc.oneof(fc.constantFrom(basicAuth('owner', PASSWORD), basicAuth('acme+bot', 'nope'), 'Basic', 'Basic =', 'Bearer x', ''), anyText.map((a) => `Basic ${Buffer.from(a).toString('base64')}`)),
        service: fc.option(anyText) })
        .map(({ scope, auth, service }) => {
          const query = new URLSearchParams();
          for (const s of scope) query.append('scope', s);
          if (service !== null) query.set('service', service);
          const headers: Record<string, string> = auth ? { authorization: headerSafe(auth) } : {};
          return { method: 'GET' as const, url: `/v2/auth?${query}`, headers };
        }),
    },
    {
      name: 'Clair notification webhook',
      requests: fc.record({ recipe: jwtRecipe('clair'), body: fc.oneof(apiBody, fc.record({ notification_id: fc.oneof(fc.uuid(), anyText), callback: fc.oneof(fc.webUrl(), anyText) }).map((b) => JSON.stringify(b))), type: fc.option(mediaType), noAuth: fc.boolean() })
        .map(({ recipe, body, type, noAuth }) => ({
          method: 'POST' as const, url: '/secscan/notification', payload: body,
          headers: { ...(noAuth ? {} : { authorization: headerSafe(`Bearer ${buildJwt(recipe, Buffer.from(CLAIR_PSK, 'base64'))}`) }), ...(type === null ? {} : { 'content-type': headerSafe(type) }) },
          mustRefuse: noAuth || mustBeRefused(recipe),
        })),
    },
  ];
}
