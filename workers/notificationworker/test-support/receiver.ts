/**
 * A webhook receiver on loopback for the notification tests and benchmark: records every request
 * (path, JSON body, time) and answers by path: `/ok` 200, `/fail` 500, `/hang` never, `/redirect`
 * 302 to `/ok`, `/hold` keeps the request open until `release()`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  readonly path: string;
  readonly body: unknown;
  readonly atMs: number;
}

export interface Receiver {
  readonly url: string;
  readonly received: ReceivedRequest[];
  /** Resolves on the next request whose path starts with `path`. */
  next(path: string): Promise<ReceivedRequest>;
  /** Answers held `/hold` requests with 200. */
  release(): void;
  close(): Promise<void>;
}

/** Starts a receiver on 127.0.0.1 at a free port. */
export async function startReceiver(): Promise<Receiver> {
  const received: ReceivedRequest[] = [];
  const waiters: { path: string; resolve: (r: ReceivedRequest) => void }[] = [];
  const held: http.ServerResponse[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      let body: unknown = text;
      try { body = JSON.parse(text); } catch { /* kept as text */ }
      const path = request.url ?? '/';
      const entry = { path, body, atMs: Date.now() };
      received.push(entry);
      for (const waiter of waiters.filter((w) => path.startsWith(w.path))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(entry);
      }
      if (path.startsWith('/ok')) response.end('ok');
      else if (path.startsWith('/fail')) response.writeHead(500).end('no');
      else if (path.startsWith('/redirect')) response.writeHead(302, { location: '/ok' }).end();
      else if (path.startsWith('/hold')) held.push(response);
      // /hang: never answered.
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    next: (path) => new Promise((resolve) => waiters.push({ path, resolve })),
    release: () => { for (const response of held.splice(0)) response.end('ok'); },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
