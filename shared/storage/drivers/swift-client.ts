/**
 * The HTTP side of the Swift driver: one keep-alive agent, a cached token renewed before it expires
 * (one authentication in flight at a time), object and container URLs, retries, and the mapping of
 * Swift's statuses onto the typed storage errors. Swift's API is plain HTTP; no maintained Node
 * client covers static large objects, temp URLs and Keystone v3, so it is spoken directly.
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidRangeError, NotFoundError, StorageError, redactSecrets } from '../errors.ts';
import { authenticate, readBody, type SendRequest, type SwiftToken } from './swift-auth.ts';
import type { SwiftSettings } from './swift-params.ts';
import { DEFAULT_STORAGE_TIMEOUTS, type StorageTimeouts } from '../timeouts.ts';

/** Tokens are renewed this long before they expire, so a long upload does not start with a dying one. */
const RENEW_BEFORE_MS = 5 * 60_000;
const RETRY_STATUS = new Set([408, 429, 498, 500, 502, 503, 504]);

export interface SwiftRequest {
  readonly method: string;
  /** Backend object name (already under the storage path); absent for the container itself. */
  readonly object?: string;
  /** The account instead of the container (temp URL key, bulk delete). */
  readonly account?: boolean;
  readonly query?: Record<string, string>;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer | Readable;
  readonly signal?: AbortSignal;
}

/** Percent-encodes an object name for a URL path, keeping its `/`. */
export function encodeName(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/** One account and container, authenticated. */
export class SwiftClient {
  readonly driver = 'SwiftStorage';
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  /** Carries the configured CA, for the storage URL and Keystone alike. */
  private readonly httpsAgent: https.Agent;
  private token: SwiftToken | undefined;
  private pending: Promise<SwiftToken> | undefined;

  constructor(readonly settings: SwiftSettings, private readonly timeouts: StorageTimeouts = DEFAULT_STORAGE_TIMEOUTS) {
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 64, ...(settings.caCertPath ? { ca: readFileSync(settings.caCertPath) } : {}) });
  }

  /** The secrets that must never appear in an error message. */
  secrets(): (string | undefined)[] {
    const auth = this.settings.auth;
    return [auth.version === '1' ? auth.key : auth.password, this.token?.token, this.settings.tempUrlKey];
  }

  /** A valid token, authenticating when there is none or it is about to expire. */
  async session(): Promise<SwiftToken> {
    if (this.token && this.token.expiresAtMs - RENEW_BEFORE_MS > Date.now()) return this.token;
    this.pending ??= authenticate(this.settings.auth, this.sendRaw, this.settings.storageUrl)
      .then((token) => {
        this.token = token;
        return token;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  /** The URL of the container, an object or the account. */
  url(storageUrl: string, request: Pick<SwiftRequest, 'object' | 'account' | 'query'>): URL {
    const base = storageUrl.replace(/\/+$/, '');
    const path = request.account ? '' : `/${encodeURIComponent(this.settings.container)}${request.object === undefined ? '' : `/${encodeName(request.object)}`}`;
    const url = new URL(`${base}${path}`);
    for (const [name, value] of Object.entries(request.query ?? {})) url.searchParams.set(name, value);
    return url;
  }

  /**
   * Sends `request` with the token and resolves with the response, whatever its status (the body
   * unread). A 401 renews the token and retries; network failures and 5xx are retried when the body
   * can be sent again (a Buffer or none).
   */
  async send(request: SwiftRequest): Promise<IncomingMessage> {
    const replayable = !request.body || Buffer.isBuffer(request.body);
    for (let attempt = 1; ; attempt++) {
      const session = await this.session();
      let response: IncomingMessage;
      try {
        response = await this.sendRaw(this.url(session.storageUrl, request), {
          method: request.method, headers: { ...request.headers, 'x-auth-token': session.token }, body: request.body, signal: request.signal,
        });
      } catch (error) {
        if (!replayable || attempt >= this.timeouts.attempts || request.signal?.aborted) throw new StorageError(redactSecrets(String((error as Error).message), this.secrets()), { driver: this.driver, operation: request.method, cause: error });
        await sleep(100 * attempt);
        continue;
      }
      const status = response.statusCode ?? 0;
      if (status === 401 && replayable && attempt < this.timeouts.attempts) {
        response.resume();
        if (this.token === session) this.token = undefined;
        continue;
      }
      if (RETRY_STATUS.has(status) && replayable && attempt < this.timeouts.attempts) {
        response.resume();
        await sleep(200 * attempt);
        continue;
      }
      return response;
    }
  }

  /** One HTTP request, no token, no retry. */
  readonly sendRaw = (url: URL, init: { method: string; headers: Record<string, string>; body?: Buffer | Readable; signal?: AbortSignal }): Promise<IncomingMessage> => {
    const secure = url.protocol === 'https:';
    const headers = { ...init.headers };
    if (Buffer.isBuffer(init.body)) headers['content-length'] = String(init.body.length);
    else if (init.body === undefined && (init.method === 'PUT' || init.method === 'POST')) headers['content-length'] ??= '0';
    return new Promise<IncomingMessage>((resolve, reject) => {
      // A socket silent for this long (connecting, or until the answer starts) fails the request: a
      // stuck server must not hold the front end's client nor hang a worker.
      const { idleMs, streamIdleMs } = this.timeouts;
      const req = (secure ? https : http).request(url, {
        method: init.method, headers, agent: secure ? this.httpsAgent : this.httpAgent, signal: init.signal, timeout: idleMs,
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} within ${idleMs / 1000} s`)));
      req.on('error', reject);
      req.on('response', (response) => {
        // The body is paced by its reader from here: the longer stream deadline.
        response.setTimeout(streamIdleMs, () => response.destroy(new Error(`${url.host} stopped sending for ${streamIdleMs / 1000} s`)));
        resolve(response);
      });
      if (init.body === undefined) req.end();
      else if (Buffer.isBuffer(init.body)) req.end(init.body);
      else {
        init.body.on('error', (error) => req.destroy(error));
        init.body.pipe(req);
      }
    });
  };

  /** Sends `request` and fails unless the status is 2xx (or in `accept`); the body is drained except a GET's. */
  async expect(request: SwiftRequest, operation: string, key?: string, accept: readonly number[] = []): Promise<IncomingMessage> {
    const response = await this.send(request);
    const status = response.statusCode ?? 0;
    if ((status >= 200 && status < 300) || accept.includes(status)) {
      // Only a listing (GET) is read by the caller; anything else is drained so its socket is reused.
      if (request.method !== 'GET') response.resume();
      return response;
    }
    throw await this.error(response, operation, key);
  }

  /** The typed error of a failed response (reads and discards the body). */
  async error(response: IncomingMessage, operation: string, key?: string): Promise<StorageError> {
    const status = response.statusCode ?? 0;
    const body = (await readBody(response, 4096).catch(() => '')).replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
    const context = { driver: this.driver, operation, key };
    if (status === 404) return new NotFoundError('no such object', context);
    if (status === 416) return new InvalidRangeError('range starts past the end of the object', context);
    return new StorageError(`HTTP ${status}${body ? `: ${redactSecrets(body, this.secrets())}` : ''}`, context);
  }

  /** Closes idle sockets; requests still running finish. */
  close(): void {
    this.httpsAgent.destroy();
    this.httpAgent.destroy();
  }
}

/** `response`'s header `name` (the first value of a repeated one). */
export function headerOf(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export type { SendRequest };
