/**
 * A Clair v4 notifier peer for tests: a real HTTP server speaking the documented notifier API
 * (reference §3.3), not a mock of a client library. `GET /notifier/api/v1/notification/{id}`
 * pages with `page_size` (default 500) and an opaque `next` cursor, absent on the last page;
 * `DELETE` marks a notification handled (a later GET is 404); with a PSK every request must carry
 * `Authorization: Bearer <HS256 JWT, iss "quay">` or gets 401. Tests can make it fail requests
 * (`failNext`) or hold a page (`holdWhen`) to kill a worker while it waits.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';

/** One entry of a notification, in Clair's shape. */
export interface ClairEntry {
  id: string;
  manifest: string;
  reason: 'added' | 'removed' | 'changed';
  vulnerability: {
    name: string; description?: string; links?: string; fixed_in_version?: string;
    normalized_severity: 'Unknown' | 'Negligible' | 'Low' | 'Medium' | 'High' | 'Critical';
    package?: { id?: string; name?: string; version?: string };
  };
}

/** A request the server answered (or held). */
export interface ClairRequest {
  readonly method: string;
  readonly id: string;
  readonly next: string | null;
  readonly pageSize: number;
  readonly status: number;
}

export interface ClairNotifier {
  /** Base URL, the value of SECURITY_SCANNER_V4_ENDPOINT. */
  readonly url: string;
  readonly requests: ClairRequest[];
  /** Notifications deleted through the API. */
  readonly deleted: Set<string>;
  add(id: string, entries: readonly ClairEntry[]): void;
  /** The next `count` requests answer `status`. */
  failNext(count: number, status?: number): void;
  /** Requests matching `predicate` are held until `release()`. */
  holdWhen(predicate: ((request: { id: string; next: string | null }) => boolean) | undefined): void;
  release(): void;
  close(): Promise<void>;
}

/** Starts the notifier on 127.0.0.1; `psk` (base64) turns token checks on. */
export async function startClairNotifier(options: { psk?: string } = {}): Promise<ClairNotifier> {
  const notifications = new Map<string, readonly ClairEntry[]>();
  const cursors = new Map<string, number>();
  const deleted = new Set<string>();
  const requests: ClairRequest[] = [];
  let failures: { count: number; status: number } = { count: 0, status: 503 };
  let hold: ((request: { id: string; next: string | null }) => boolean) | undefined;
  const held: (() => void)[] = [];

  async function authorized(request: http.IncomingMessage): Promise<boolean> {
    if (!options.psk) return true;
    const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? '');
    if (!match) return false;
    try {
      await jwtVerify(match[1]!, Buffer.from(options.psk, 'base64'), { algorithms: ['HS256'], issuer: 'quay', requiredClaims: ['exp'] });
      return true;
    } catch {
      return false;
    }
  }

  const server = http.createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', 'http://clair');
      const match = /^\/notifier\/api\/v1\/notification\/([^/]+)$/.exec(url.pathname);
      const id = match ? decodeURIComponent(match[1]!) : '';
      const next = url.searchParams.get('next');
      const pageSize = Number(url.searchParams.get('page_size') ?? 500);
      const answer = (status: number, body?: unknown) => {
        requests.push({ method: request.method ?? '', id, next, pageSize, status });
        response.writeHead(status, { 'content-type': 'application/json' }).end(body === undefined ? '' : JSON.stringify(body));
      };
      if (!match) return answer(404, { code: 'not-found' });
      if (!(await authorized(request))) return answer(401, { code: 'unauthorized' });
      if (failures.count > 0) {
        failures.count--;
        return answer(failures.status, { code: 'unavailable' });
      }
      if (hold?.({ id, next })) await new Promise<void>((resolve) => held.push(resolve));
      const entries = notifications.get(id);
      if (!entries || deleted.has(id)) return answer(404, { code: 'not-found', message: 'notification not found' });
      if (request.method === 'DELETE') {
        deleted.add(id);
        return answer(200);
      }
      if (request.method !== 'GET') return answer(405);
      const offset = next ? cursors.get(next) : 0;
      if (offset === undefined) return answer(400, { code: 'bad-request', message: 'unknown next' });
      const slice = entries.slice(offset, offset + pageSize);
      const page: { size: number; next?: string } = { size: slice.length };
      if (offset + pageSize < entries.length) {
        const cursor = randomUUID();
        cursors.set(cursor, offset + pageSize);
        page.next = cursor;
      }
      answer(200, { page, notifications: slice });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    deleted,
    add: (id, entries) => { notifications.set(id, entries); deleted.delete(id); },
    failNext: (count, status = 503) => { failures = { count, status }; },
    holdWhen: (predicate) => { hold = predicate; },
    release: () => { for (const resolve of held.splice(0)) resolve(); },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
