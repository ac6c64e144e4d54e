/**
 * HTTP(S) requests to an upstream registry with what a mirror config asks for: TLS verification
 * on or off, extra CA certificates, and Quay's proxy settings (`http_proxy`, `https_proxy`,
 * `no_proxy`: plain HTTP through the proxy with an absolute URI, HTTPS through a CONNECT tunnel).
 * Responses stream; nothing here buffers a body.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import tls from 'node:tls';

/** Quay's `external_registry_config.proxy`. */
export interface ProxySettings {
  readonly http_proxy?: string | null;
  readonly https_proxy?: string | null;
  readonly no_proxy?: string | null;
}

/** How requests reach the upstream. */
export interface TransportOptions {
  readonly verifyTls: boolean;
  /** Extra trusted CA certificates (PEM), beside Node's defaults. */
  readonly ca?: readonly string[];
  readonly proxy?: ProxySettings;
  /** Socket inactivity limit. */
  readonly idleTimeoutMs: number;
}

/** The upstream could not be reached (DNS, refused, reset, TLS, timeout). */
export class UpstreamConnectionError extends Error {
  constructor(readonly url: string, cause: unknown) {
    super(`cannot reach ${url}: ${(cause as Error).message ?? String(cause)}`, { cause });
    this.name = 'UpstreamConnectionError';
  }
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

function proxyFor(url: URL, proxy: ProxySettings | undefined): URL | undefined {
  const raw = url.protocol === 'https:' ? proxy?.https_proxy : proxy?.http_proxy;
  if (!raw) return undefined;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  if (matchesNoProxy(url.hostname, port, proxy?.no_proxy)) return undefined;
  return new URL(raw.includes('://') ? raw : `http://${raw}`);
}

function proxyAuthorization(proxy: URL): OutgoingHttpHeaders {
  if (!proxy.username) return {};
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(credentials).toString('base64')}` };
}

function tunnel(proxy: URL, target: URL, options: TransportOptions, signal: AbortSignal | undefined): Promise<Socket> {
  const port = target.port || '443';
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: proxy.hostname, port: proxy.port || 80, method: 'CONNECT', path: `${target.hostname}:${port}`,
      headers: { host: `${target.hostname}:${port}`, ...proxyAuthorization(proxy) }, signal, timeout: options.idleTimeoutMs,
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

/** Sends one request and resolves with the response head (the body streams). UpstreamConnectionError on network failure. */
export async function send(
  url: URL, init: { method: string; headers: OutgoingHttpHeaders; signal?: AbortSignal }, options: TransportOptions,
): Promise<IncomingMessage> {
  const proxy = proxyFor(url, options.proxy);
  const isHttps = url.protocol === 'https:';
  const tlsOptions: tls.ConnectionOptions = {
    rejectUnauthorized: options.verifyTls, ...(isIP(url.hostname.replace(/^\[|\]$/g, '')) ? {} : { servername: url.hostname }),
    ...(options.ca?.length ? { ca: [...tls.rootCertificates, ...options.ca] } : {}),
  };
  try {
    let request: http.ClientRequest;
    if (proxy && !isHttps) {
      request = http.request({
        host: proxy.hostname, port: proxy.port || 80, method: init.method, path: url.href,
        headers: { ...init.headers, host: url.host, ...proxyAuthorization(proxy) }, signal: init.signal,
      });
    } else if (proxy && isHttps) {
      const socket = await tunnel(proxy, url, options, init.signal);
      request = https.request({
        ...tlsOptions, method: init.method, path: url.pathname + url.search, headers: { ...init.headers, host: url.host }, signal: init.signal,
        createConnection: () => tls.connect({ ...tlsOptions, socket }), agent: false,
      });
    } else {
      request = (isHttps ? https : http).request(url, { ...tlsOptions, method: init.method, headers: init.headers, signal: init.signal });
    }
    return await new Promise<IncomingMessage>((resolve, reject) => {
      request.setTimeout(options.idleTimeoutMs, () => request.destroy(new Error(`no answer within ${options.idleTimeoutMs} ms`)));
      request.once('response', (response) => {
        // The idle limit keeps applying while the body streams; the listener goes with the
        // response, as a kept-alive socket serves many.
        const socket = response.socket;
        const onIdle = (): void => void response.destroy(new Error(`body stalled for ${options.idleTimeoutMs} ms`));
        socket.setTimeout(options.idleTimeoutMs);
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
