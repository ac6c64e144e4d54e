/**
 * HTTP(S) connections of one sync to an upstream registry (and to where it redirects blobs), with
 * what the mirror config asks for: TLS verification on or off, extra CA certificates (all
 * upstreams, or one host), Quay's proxy settings (`http_proxy`, `https_proxy`, `no_proxy`: plain
 * HTTP through the proxy with an absolute URI, HTTPS through a CONNECT tunnel), and the SSRF
 * policy applied to every connection made directly (the resolver refuses a private address at
 * connect time, so a name re-pointed after the sync's pre-check is refused: DNS rebinding).
 *
 * One keep-alive agent per origin, so a sync's hundreds of blob and manifest requests reuse a few
 * connections (and TLS sessions) instead of a handshake each; `close()` ends them with the sync.
 * Responses stream; nothing here buffers a body.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { mirrorProxyUrl } from '../../shared/net/registry-reference.ts';
import { assertAddressAllowed, guardedLookup, type SsrfPolicy } from '../../shared/net/ssrf.ts';

/** Quay's `external_registry_config.proxy`. */
export interface ProxySettings {
  readonly http_proxy?: string | null;
  readonly https_proxy?: string | null;
  readonly no_proxy?: string | null;
}

/** How requests reach the upstream. */
export interface TransportOptions {
  readonly verifyTls: boolean;
  /** Extra trusted CA certificates (PEM) for a host (`host:port` of the URL), beside Node's defaults. */
  readonly caFor?: (url: URL) => Promise<readonly string[]>;
  readonly proxy?: ProxySettings | undefined;
  /** Socket inactivity limit. */
  readonly idleTimeoutMs: number;
  /**
   * Addresses direct connections may reach (SSRF_ALLOWED_HOSTS; `host` and `host:port` entries
   * admit that name); undefined: no check. Through a proxy, the proxy's address is checked (the
   * target is the proxy's to resolve).
   */
  readonly ssrf?: SsrfPolicy | undefined;
  /** Connections kept per origin. */
  readonly maxSocketsPerOrigin?: number;
}

/** The upstream could not be reached (DNS, refused, reset, TLS, timeout, or an address the SSRF policy refuses). */
export class UpstreamConnectionError extends Error {
  constructor(readonly url: string, cause: unknown) {
    super(`cannot reach ${url}: ${describeConnectionError(cause)}`, { cause });
    this.name = 'UpstreamConnectionError';
  }
}

const UNKNOWN_AUTHORITY = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);

// Operators search for Go's wording (what skopeo printed under Quay); say it, then what to do.
function describeConnectionError(cause: unknown): string {
  const error = cause as NodeJS.ErrnoException;
  const message = error?.message ?? String(cause);
  if (error?.code && UNKNOWN_AUTHORITY.has(error.code)) {
    return `x509: certificate signed by unknown authority (${message}): put the upstream's CA certificate in the extra_ca_certs directory, or turn verify_tls off`;
  }
  if (error?.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `x509: certificate is not valid for this host (${message})`;
  if (error?.code === 'CERT_HAS_EXPIRED') return `x509: certificate has expired (${message})`;
  if (/wrong version number|packet length too long/i.test(message)) {
    return `the upstream does not speak TLS (${message}): verify_tls requires HTTPS; turn verify_tls off for a plain-HTTP registry`;
  }
  return message;
}

function matchesNoProxy(host: string, port: string, noProxy: string | null | undefined): boolean {
  if (!noProxy) return false;
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  return noProxy.split(/[\s,]+/).filter(Boolean).some((raw) => {
    const entry = raw.toLowerCase();
    if (entry === '*') return true;
    const [entryHost, entryPort] = entry.startsWith('[') ? [entry.replace(/^\[|\](:\d+)?$/g, ''), /\]:(\d+)$/.exec(entry)?.[1]] : entry.split(':');
    if (entryPort !== undefined && entryPort !== port) return false;
    const bare = entryHost!.replace(/^\*?\./, '');
    return name === bare || name.endsWith(`.${bare}`);
  });
}

function portOf(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

function proxyFor(url: URL, proxy: ProxySettings | undefined): URL | undefined {
  const raw = url.protocol === 'https:' ? proxy?.https_proxy : proxy?.http_proxy;
  if (!raw) return undefined;
  if (matchesNoProxy(url.hostname, portOf(url), proxy?.no_proxy)) return undefined;
  return mirrorProxyUrl(raw);
}

function proxyAuthorization(proxy: URL): OutgoingHttpHeaders {
  if (!proxy.username) return {};
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(credentials).toString('base64')}` };
}

function tunnel(proxy: URL, target: URL, idleTimeoutMs: number, lookup: LookupFunction | undefined): Promise<Duplex> {
  const authority = `${target.hostname}:${portOf(target)}`;
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: proxy.hostname, port: proxy.port || 80, method: 'CONNECT', path: authority,
      headers: { host: authority, ...proxyAuthorization(proxy) }, timeout: idleTimeoutMs, agent: false, ...(lookup ? { lookup } : {}),
    });
    request.once('connect', (response, socket) => {
      if (response.statusCode !== 200) {
        socket.destroy();
        reject(new Error(`proxy ${proxy.host} refused CONNECT with ${response.statusCode}`));
      } else resolve(socket);
    });
    request.once('timeout', () => request.destroy(new Error('proxy CONNECT timed out')));
    request.once('error', reject);
    request.end();
  });
}

/** Keep-alive HTTPS over CONNECT tunnels: each pooled socket is a TLS session inside its own tunnel. */
class TunnelingAgent extends https.Agent {
  constructor(
    private readonly proxy: URL, private readonly target: URL, private readonly idleTimeoutMs: number, options: https.AgentOptions,
    private readonly proxyLookup: LookupFunction | undefined,
  ) {
    super(options);
  }

  override createConnection(options: tls.ConnectionOptions, callback?: (error: Error | null, socket: Duplex) => void): Duplex | undefined {
    // The agent's callback is called once: an error after the handshake is the request's to see.
    let settled = false;
    const done = (error: Error | null, socket: Duplex): void => {
      if (settled) return;
      settled = true;
      callback?.(error, socket);
    };
    tunnel(this.proxy, this.target, this.idleTimeoutMs, this.proxyLookup).then(
      (socket) => {
        const secure = tls.connect({ ...options, socket });
        secure.once('secureConnect', () => done(null, secure));
        secure.once('error', (error) => done(error, secure));
      },
      (error: Error) => done(error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

// `host` and `host:port` allow-list entries admit a name; ssrf.ts matches names, addresses and ranges.
function policyFor(policy: SsrfPolicy, url: URL): SsrfPolicy {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const authority = `${host}:${portOf(url)}`;
  const named = policy.allowedHosts.some((entry) => entry.trim().toLowerCase() === authority);
  return named ? { ...policy, allowedHosts: [...policy.allowedHosts, host] } : policy;
}

/** The connections of one sync. */
export class Transport {
  private readonly agents = new Map<string, Promise<{ agent: http.Agent; proxy: URL | undefined; lookup: LookupFunction | undefined }>>();

  constructor(private readonly options: TransportOptions) {}

  private route(url: URL) {
    const key = `${url.protocol}//${url.host}`;
    let route = this.agents.get(key);
    if (!route) {
      route = this.newRoute(url);
      route.catch(() => this.agents.delete(key));
      this.agents.set(key, route);
    }
    return route;
  }

  private async newRoute(url: URL) {
    const { options } = this;
    const proxy = proxyFor(url, options.proxy);
    const common = { keepAlive: true, maxSockets: options.maxSocketsPerOrigin ?? 16, timeout: options.idleTimeoutMs, scheduling: 'lifo' as const };
    let lookup: LookupFunction | undefined;
    if (options.ssrf) {
      // Through a proxy, the connection the worker makes is to the proxy: that address is checked
      // (a repository admin sets the proxy, so it must not reach loopback or metadata either).
      const hop = proxy ?? url;
      const policy = policyFor(options.ssrf, hop);
      const host = hop.hostname.replace(/^\[|\]$/g, '');
      // Node connects to an address literal without a lookup: check it here.
      if (isIP(host)) assertAddressAllowed(policy, host.toLowerCase(), host);
      else lookup = guardedLookup(policy);
    }
    if (url.protocol !== 'https:') return { agent: new http.Agent(common), proxy, lookup };
    const extra = (await options.caFor?.(url)) ?? [];
    const tlsOptions: https.AgentOptions = {
      ...common, rejectUnauthorized: options.verifyTls,
      ...(extra.length ? { ca: [...tls.rootCertificates, ...extra] } : {}),
    };
    return { agent: proxy ? new TunnelingAgent(proxy, url, options.idleTimeoutMs, tlsOptions, lookup) : new https.Agent(tlsOptions), proxy, lookup };
  }

  /** Sends one request and resolves with the response head (the body streams). UpstreamConnectionError on network failure. */
  async send(url: URL, init: { method: string; headers: OutgoingHttpHeaders; signal?: AbortSignal | undefined }): Promise<IncomingMessage> {
    const { idleTimeoutMs } = this.options;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    try {
      const { agent, proxy, lookup } = await this.route(url);
      const servername = url.protocol === 'https:' && !isIP(host) ? { servername: host } : {};
      const request = proxy && url.protocol === 'http:'
        ? http.request({
          host: proxy.hostname, port: proxy.port || 80, method: init.method, path: url.href, agent,
          headers: { ...init.headers, host: url.host, ...proxyAuthorization(proxy) }, signal: init.signal, ...(lookup ? { lookup } : {}),
        })
        : (url.protocol === 'https:' ? https : http).request(url, {
          method: init.method, headers: init.headers, signal: init.signal, agent, ...servername, ...(lookup ? { lookup } : {}),
        });
      return await new Promise<IncomingMessage>((resolve, reject) => {
        request.setTimeout(idleTimeoutMs, () => request.destroy(new Error(`no answer within ${idleTimeoutMs} ms`)));
        request.once('response', (response) => {
          // The idle limit keeps applying while the body streams; the listener goes with the
          // response, as a kept-alive socket serves many.
          const socket = response.socket;
          const onIdle = (): void => void response.destroy(new Error(`body stalled for ${idleTimeoutMs} ms`));
          socket.setTimeout(idleTimeoutMs);
          socket.on('timeout', onIdle);
          response.once('close', () => socket.off('timeout', onIdle));
          resolve(response);
        });
        request.once('error', reject);
        request.end();
      });
    } catch (error) {
      if (init.signal?.aborted) throw error;
      throw new UpstreamConnectionError(url.href, error);
    }
  }

  /** Closes every kept-alive connection (the end of the sync). */
  close(): void {
    for (const route of this.agents.values()) route.then(({ agent }) => agent.destroy(), () => undefined);
    this.agents.clear();
  }
}

/** Reads a (small, bounded) response body; refuses more than `maxBytes`. */
export async function readBody(response: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response) {
    total += (chunk as Buffer).length;
    if (total > maxBytes) {
      response.destroy();
      throw new Error(`response larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Drains and discards a response body (so the socket can be reused or closed cleanly). */
export function discard(response: IncomingMessage): void {
  response.resume();
}
