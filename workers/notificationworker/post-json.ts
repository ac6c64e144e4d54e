/**
 * One JSON POST to a user-configured URL: the URL and every address it resolves to pass the SSRF
 * policy at connection time, the whole exchange is bounded by `timeoutMs` (Quay's
 * NOTIFICATION_SEND_TIMEOUT, 10 s), redirects are not followed (a 3xx is a failure, so a redirect
 * to an internal address is never fetched), and anything but a 2xx is a failure.
 */
import http from 'node:http';
import https from 'node:https';
import { checkUrl, guardedLookup, type SsrfPolicy } from '../../shared/net/ssrf.ts';

/** A send that failed: refused URL, connection error, timeout or non-2xx answer. */
export class DeliveryFailedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeliveryFailedError';
  }
}

/** What a POST needs beside the URL and body. */
export interface PostOptions {
  readonly policy: SsrfPolicy;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** POSTs `body` as JSON; resolves with the status on 2xx, throws DeliveryFailedError otherwise. */
export async function postJson(rawUrl: string, body: unknown, options: PostOptions): Promise<number> {
  let url: URL;
  try {
    url = checkUrl(options.policy, rawUrl);
  } catch (error) {
    throw new DeliveryFailedError(`refused ${rawUrl}: ${(error as Error).message}`, { cause: error });
  }
  const payload = Buffer.from(JSON.stringify(body));
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<number>((resolve, reject) => {
    // One timer bounds the whole exchange (connect, send, answer); the job's abort signal ends it
    // too. Cheaper than a combined AbortSignal per request (AbortSignal.any of a timeout signal).
    let timedOut = false;
    const request = transport.request(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length, 'User-Agent': 'quayfleet-notification' },
      lookup: guardedLookup(options.policy),
      signal: options.signal,
    }, (response) => {
      // The answer's body is not used; drain it (bounded by the timeout) so the socket is freed.
      response.resume();
      response.on('end', () => {
        clearTimeout(timer);
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(status);
        else reject(new DeliveryFailedError(`${url.host} answered ${status}`));
      });
      response.on('error', (error) => {
        clearTimeout(timer);
        reject(new DeliveryFailedError(`${url.host}: ${timedOut ? `timed out after ${options.timeoutMs} ms` : error.message}`, { cause: error }));
      });
    });
    const timer = setTimeout(() => {
      timedOut = true;
      request.destroy(new Error(`timed out after ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    request.on('error', (error) => {
      clearTimeout(timer);
      const reason = timedOut ? `timed out after ${options.timeoutMs} ms` : error.message;
      reject(new DeliveryFailedError(`POST to ${url.host} failed: ${reason}`, { cause: error }));
    });
    request.end(payload);
  });
}
