/**
 * Getting a Swift token and storage URL: v1 auth (TempAuth, RadosGW's `/auth/1.0`: `X-Auth-User` /
 * `X-Auth-Key` in, `X-Storage-Url` / `X-Auth-Token` out) and Keystone v3 (`POST /v3/auth/tokens`
 * with the password method and a project scope; the token is the `X-Subject-Token` header and the
 * storage URL comes from the token's service catalog). See
 * https://docs.openstack.org/api-ref/identity/v3/#password-authentication-with-scoped-authorization
 */
import type { IncomingMessage } from 'node:http';
import { StorageError } from '../errors.ts';
import type { SwiftAuthSettings } from './swift-params.ts';

/** A token, the storage (account) URL it is valid for, and when it stops being valid. */
export interface SwiftToken {
  readonly token: string;
  readonly storageUrl: string;
  readonly expiresAtMs: number;
}

/** Sends one HTTP request and resolves with the response (the body unread). */
export type SendRequest = (url: URL, init: { method: string; headers: Record<string, string>; body?: Buffer }) => Promise<IncomingMessage>;

/** Tokens whose lifetime the server does not say are renewed after this long. */
const DEFAULT_TOKEN_MS = 3_600_000;
const MAX_ERROR_BODY = 4096;

/** Reads a small response body (error documents, token responses), at most `limit` bytes. */
export async function readBody(response: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      response.destroy();
      throw new Error(`response body larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function authError(reason: string, cause?: unknown): StorageError {
  return new StorageError(reason, { driver: 'SwiftStorage', operation: 'authenticate', cause });
}

async function failure(response: IncomingMessage, what: string): Promise<StorageError> {
  const body = (await readBody(response, MAX_ERROR_BODY).catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 300);
  const hint = response.statusCode === 401 ? ' (wrong user or password?)' : '';
  return authError(`${what} answered HTTP ${response.statusCode}${hint}${body ? `: ${body}` : ''}`);
}

function header(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Authenticates with `auth` and returns a token with its storage URL (`storageUrl` overrides the one found). */
export async function authenticate(auth: SwiftAuthSettings, send: SendRequest, storageUrl?: string): Promise<SwiftToken> {
  const token = auth.version === '1' ? await authV1(auth, send) : await authV3(auth, send, storageUrl !== undefined);
  return storageUrl ? { ...token, storageUrl } : token;
}

async function authV1(auth: Extract<SwiftAuthSettings, { version: '1' }>, send: SendRequest): Promise<SwiftToken> {
  const response = await send(new URL(auth.authUrl), { method: 'GET', headers: { 'x-auth-user': auth.user, 'x-auth-key': auth.key } });
  if ((response.statusCode ?? 0) >= 300) throw await failure(response, `v1 auth at ${auth.authUrl}`);
  response.resume();
  const token = header(response, 'x-auth-token') ?? header(response, 'x-storage-token');
  const storageUrl = header(response, 'x-storage-url');
  if (!token || !storageUrl) throw authError(`v1 auth at ${auth.authUrl} returned no X-Auth-Token or X-Storage-Url`);
  const seconds = Number(header(response, 'x-auth-token-expires'));
  return { token, storageUrl, expiresAtMs: Date.now() + (Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_TOKEN_MS) };
}

/** `<auth_url>/v3/auth/tokens`, accepting an auth URL given with or without `/v3`. */
export function keystoneTokensUrl(authUrl: string): URL {
  const base = authUrl.replace(/\/+$/, '');
  if (/\/auth\/tokens$/.test(base)) return new URL(base);
  return new URL(/\/v3$/.test(base) ? `${base}/auth/tokens` : `${base}/v3/auth/tokens`);
}

interface CatalogEndpoint { interface?: string; region?: string; region_id?: string; url?: string }
interface CatalogEntry { type?: string; endpoints?: CatalogEndpoint[] }
interface TokenBody { token?: { expires_at?: string; catalog?: CatalogEntry[] } }

async function authV3(auth: Extract<SwiftAuthSettings, { version: '3' }>, send: SendRequest, haveStorageUrl: boolean): Promise<SwiftToken> {
  const url = keystoneTokensUrl(auth.authUrl);
  const request = {
    auth: {
      identity: { methods: ['password'], password: { user: { ...auth.user, password: auth.password } } },
      ...(auth.project ? { scope: { project: auth.project } } : {}),
    },
  };
  const response = await send(url, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: Buffer.from(JSON.stringify(request)),
  });
  if (response.statusCode !== 201 && response.statusCode !== 200) throw await failure(response, `Keystone at ${url.origin}${url.pathname}`);
  const token = header(response, 'x-subject-token');
  let body: TokenBody;
  try {
    body = JSON.parse(await readBody(response)) as TokenBody;
  } catch (error) {
    throw authError(`Keystone at ${url.origin} answered with a token document that is not JSON`, error);
  }
  if (!token) throw authError(`Keystone at ${url.origin} returned no X-Subject-Token`);
  const expires = Date.parse(body.token?.expires_at ?? '');
  const expiresAtMs = Number.isFinite(expires) ? expires : Date.now() + DEFAULT_TOKEN_MS;
  const storageUrl = haveStorageUrl ? '' : catalogEndpoint(body.token?.catalog ?? [], auth);
  return { token, storageUrl, expiresAtMs };
}

/** The storage URL in a Keystone catalog: the service type's endpoint of the interface (and region, when set). */
export function catalogEndpoint(catalog: readonly CatalogEntry[], auth: { serviceType: string; interface: string; region?: string }): string {
  const services = catalog.filter((entry) => entry.type === auth.serviceType);
  const endpoints = services.flatMap((entry) => entry.endpoints ?? [])
    .filter((e) => e.interface === auth.interface && (!auth.region || e.region_id === auth.region || e.region === auth.region));
  const where = `service type ${auth.serviceType}, interface ${auth.interface}${auth.region ? `, region ${auth.region}` : ''}`;
  if (endpoints.length === 0) {
    const regions = [...new Set(services.flatMap((s) => s.endpoints ?? []).map((e) => e.region_id ?? e.region))].filter(Boolean);
    throw authError(`the Keystone catalog has no endpoint for ${where}${regions.length ? ` (regions: ${regions.join(', ')})` : ''}`);
  }
  const urls = new Set(endpoints.map((e) => e.url));
  // Several regions and no region configured: choosing one silently could write to the wrong one.
  if (urls.size > 1 && !auth.region) throw authError(`the Keystone catalog has ${urls.size} endpoints for ${where}: set os_options.region_name`);
  const found = endpoints[0]?.url;
  if (!found) throw authError(`the Keystone catalog endpoint for ${where} has no URL`);
  return found;
}
