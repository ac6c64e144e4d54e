/**
 * A client of one upstream repository over the OCI distribution API: anonymous, Basic and bearer
 * token auth (the `WWW-Authenticate` challenge, Docker's token flow), paginated tag lists
 * (`Link: <...>; rel="next"`), manifests with their exact bytes, blobs as streams (following
 * redirects to object storage without the registry's credentials), and `Retry-After` on 429/503.
 * With TLS verification off, a plain-HTTP upstream works (skopeo's `--src-tls-verify=false`).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExternalReference } from '../../shared/net/registry-reference.ts';
import { discard, readBody, Transport, type TransportOptions } from './transport.ts';

/** Manifest media types the mirror asks for (Docker schema 2, OCI, lists and indexes). */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** An upstream answer the sync cannot go past; `status` is the HTTP status when there was one. */
export class UpstreamError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'UpstreamError';
  }
}

/** A fetched manifest. */
export interface UpstreamManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  /** sha256 of the bytes (what the upstream's Docker-Content-Digest must equal). */
  readonly digest: string;
}

export interface UpstreamOptions extends TransportOptions {
  readonly reference: ExternalReference;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly signal?: AbortSignal;
  /** Longest `Retry-After` honoured, and how many times, before a 429/503 fails the request. */
  readonly maxRetryAfterMs?: number;
  readonly maxRetries?: number;
  /** Called for each request sent (metrics, tests). */
  readonly onRequest?: (method: string, url: URL) => void;
}

const MAX_MANIFEST_BYTES = 10 * 1024 * 1024; // Quay's REPO_MIRROR_MAX_MANIFEST_LIST_SIZE
const MAX_REDIRECTS = 5;

function parseChallenge(header: string | undefined): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined;
  const match = /^(\w+)\s*(.*)$/s.exec(header.trim());
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (const m of match[2]!.matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? '';
  return { scheme: match[1]!.toLowerCase(), params };
}

/** The upstream repository `options.reference`. */
export class UpstreamRepository {
  private scheme: 'https:' | 'http:' = 'https:';
  private schemeSettled = false;
  private authorization: string | undefined;
  private readonly transport: Transport;

  constructor(private readonly options: UpstreamOptions) {
    this.transport = new Transport(options);
  }

  /** Ends the kept-alive connections (the end of the sync). */
  close(): void {
    this.transport.close();
  }

  private get basic(): string | undefined {
    const { username, password } = this.options;
    return username && password ? `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` : undefined;
  }

  private url(path: string): URL {
    return new URL(`${this.scheme}//${this.options.reference.authority}/v2/${this.options.reference.repository}${path}`);
  }

  /** Sends with auth, scheme fallback, Retry-After and redirects; resolves with a 2xx response or throws. */
  private async request(method: string, path: string, headers: OutgoingHttpHeaders = {}, signal = this.options.signal): Promise<IncomingMessage> {
    let retries = 0;
    for (let authTries = 0; ; ) {
      const response = await this.sendFollowing(method, this.url(path), headers, signal);
      const status = response.statusCode ?? 0;
      if (status === 401 && authTries < 1 && await this.authenticate(response, signal)) {
        authTries += 1;
        continue;
      }
      if ((status === 429 || status === 503) && retries < (this.options.maxRetries ?? 3)) {
        const waitMs = retryAfterMs(response.headers['retry-after']);
        discard(response);
        if (waitMs <= (this.options.maxRetryAfterMs ?? 60_000)) {
          retries += 1;
          await sleep(waitMs, undefined, { signal });
          continue;
        }
      }
      if (status >= 200 && status < 300) return response;
      const body = (await readBody(response, 64 * 1024).catch(() => Buffer.alloc(0))).toString('utf8').slice(0, 500);
      throw new UpstreamError(`${method} ${path} answered ${status}${status === 401 ? ' (authentication failed: check the username and password)' : ''}${body ? `: ${body}` : ''}`, status);
    }
  }

  private async sendFollowing(method: string, first: URL, headers: OutgoingHttpHeaders, signal: AbortSignal | undefined): Promise<IncomingMessage> {
    let url = first;
    let sameOrigin = true;
    for (let hops = 0; ; hops += 1) {
      const auth = sameOrigin && this.authorization ? { authorization: this.authorization } : {};
      this.options.onRequest?.(method, url);
      const response = await this.sendSettlingScheme(url, { method, headers: { ...headers, ...auth }, signal });
      const status = response.statusCode ?? 0;
      if (![301, 302, 303, 307, 308].includes(status) || !response.headers.location || hops >= MAX_REDIRECTS) return response;
      discard(response);
      const next = new URL(response.headers.location, url);
      sameOrigin = sameOrigin && next.origin === url.origin;
      url = next;
    }
  }

  // With TLS verification off, an upstream that does not speak TLS is tried over plain HTTP once.
  private async sendSettlingScheme(url: URL, init: { method: string; headers: OutgoingHttpHeaders; signal: AbortSignal | undefined }): Promise<IncomingMessage> {
    const onUpstream = url.host === this.options.reference.authority || url.host === `${this.options.reference.host}:${this.options.reference.port}`;
    try {
      const response = await this.transport.send(url, init);
      if (onUpstream) this.schemeSettled = true;
      return response;
    } catch (error) {
      if (!onUpstream || this.schemeSettled || this.options.verifyTls || url.protocol !== 'https:' || init.signal?.aborted) throw error;
      this.scheme = 'http:';
      this.schemeSettled = true;
      const plain = new URL(url.href.replace(/^https:/, 'http:'));
      return this.transport.send(plain, init);
    }
  }

  // Answers a 401 challenge; false when there is nothing new to try.
  private async authenticate(response: IncomingMessage, signal: AbortSignal | undefined): Promise<boolean> {
    const challenge = parseChallenge(response.headers['www-authenticate'] as string | undefined);
    discard(response);
    if (challenge?.scheme === 'basic') {
      if (!this.basic || this.authorization === this.basic) return false;
      this.authorization = this.basic;
      return true;
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm) return false;
    const realm = new URL(challenge.params.realm);
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    realm.searchParams.append('scope', challenge.params.scope ?? `repository:${this.options.reference.repository}:pull`);
    this.options.onRequest?.('GET', realm);
    const tokenResponse = await this.transport.send(realm, { method: 'GET', headers: this.basic ? { authorization: this.basic } : {}, signal });
    const body = await readBody(tokenResponse, 1024 * 1024);
    if ((tokenResponse.statusCode ?? 0) !== 200) {
      throw new UpstreamError(`token request to ${realm.origin}${realm.pathname} answered ${tokenResponse.statusCode} (authentication failed: check the username and password)`, tokenResponse.statusCode);
    }
    const parsed = JSON.parse(body.toString('utf8')) as { token?: string; access_token?: string };
    const token = parsed.token ?? parsed.access_token;
    if (!token) throw new UpstreamError(`token endpoint ${realm.origin}${realm.pathname} returned no token`);
    this.authorization = `Bearer ${token}`;
    return true;
  }

  /** Every tag of the repository, following pagination; `signal` also ends it (skopeo_timeout). */
  async listTags(signal?: AbortSignal): Promise<string[]> {
    const combined = signal && this.options.signal ? AbortSignal.any([this.options.signal, signal]) : signal ?? this.options.signal;
    const tags: string[] = [];
    let path = '/tags/list?n=1000';
    for (let pages = 0; pages < 10_000; pages += 1) {
      const response = await this.request('GET', path, {}, combined);
      const link = response.headers.link;
      const body = JSON.parse((await readBody(response, 16 * 1024 * 1024)).toString('utf8')) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const next = typeof link === 'string' ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1] : undefined;
      if (!next) return tags;
      const url = new URL(next, this.url('/'));
      path = url.pathname.replace(`/v2/${this.options.reference.repository}`, '') + url.search;
    }
    throw new UpstreamError('tag list pagination did not end');
  }

  /** The manifest `reference` (tag or digest) with its exact bytes; checked against a digest reference. */
  async getManifest(reference: string): Promise<UpstreamManifest> {
    const response = await this.request('GET', `/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    const bytes = await readBody(response, MAX_MANIFEST_BYTES);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (reference.includes(':') && reference !== digest) throw new UpstreamError(`manifest ${reference} arrived with digest ${digest}`);
    const header = (response.headers['content-type'] ?? '').split(';')[0]!.trim();
    let declared: string | undefined;
    try {
      declared = (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType;
    } catch {
      throw new UpstreamError(`manifest ${reference} is not JSON`);
    }
    return { bytes, digest, mediaType: declared ?? header };
  }

  /** The blob `digest` as a stream, with its announced length when the upstream sends one. */
  async openBlob(digest: string): Promise<{ stream: IncomingMessage; length: number | undefined }> {
    const response = await this.request('GET', `/blobs/${digest}`);
    const length = response.headers['content-length'] === undefined ? undefined : Number(response.headers['content-length']);
    return { stream: response, length };
  }
}

function retryAfterMs(header: string | undefined): number {
  if (!header) return 1000;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? 1000 : Math.max(0, at - Date.now());
}
