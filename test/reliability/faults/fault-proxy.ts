/**
 * A fault-injecting HTTP proxy between the fleet and an S3 endpoint (RadosGW), in the spirit of
 * toxiproxy but HTTP-aware, so a fault can be an S3 error answer and not only a broken socket.
 * The fleet's storage config points at the proxy; the proxy forwards every request unchanged
 * (same method, path, headers including Host, so SigV4 signatures stay valid) to the target.
 *
 * Modes (`setMode`), each one way the real RadosGW fails:
 *
 * | mode      | what the client sees                                                             |
 * |-----------|----------------------------------------------------------------------------------|
 * | `pass`    | the target's own answer                                                          |
 * | `errors`  | HTTP 500 `InternalError` (S3's XML error body) without reaching the target       |
 * | `slow`    | the target's answer, each request held `slowMs` before it is forwarded, and its  |
 * |           | answer's body paced at `bytesPerSecond` when given (a slow link that still flows) |
 * | `hang`    | the connection is accepted and the request read, but nothing comes back until    |
 * |           | the mode changes; then the held requests are forwarded (a network partition     |
 * |           | that heals: TCP retransmits and the server finally answers)                       |
 * | `refuse`  | the listener is closed and open connections are cut: ECONNREFUSED / ECONNRESET   |
 *
 * Counts of requests per mode are kept so a run can say how many storage calls a fault hit.
 */
import http from 'node:http';
import type net from 'node:net';
import { Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

export type FaultMode = 'pass' | 'errors' | 'slow' | 'hang' | 'refuse';

export interface FaultProxy {
  readonly port: number;
  readonly mode: FaultMode;
  /** Requests the proxy saw, by the mode they met. */
  readonly requests: Readonly<Record<FaultMode, number>>;
  /** Switches the mode; `refuse` closes the listener, leaving it reopens on the same port. */
  setMode(mode: FaultMode, options?: { slowMs?: number; bytesPerSecond?: number }): Promise<void>;
  close(): Promise<void>;
}

const S3_INTERNAL_ERROR = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
  + '<Message>We encountered an internal error. Please try again.</Message></Error>';

/** Starts a proxy on 127.0.0.1:`port` forwarding to `target`. */
export async function startFaultProxy(port: number, target: { host: string; port: number }): Promise<FaultProxy> {
  let mode: FaultMode = 'pass';
  let slowMs = 2000;
  let bytesPerSecond: number | undefined;
  const requests: Record<FaultMode, number> = { pass: 0, errors: 0, slow: 0, hang: 0, refuse: 0 };
  const sockets = new Set<net.Socket>();
  // Requests held by `hang`, released when the mode changes.
  let held: (() => void)[] = [];

  const forward = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const upstream = http.request({ host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      if (mode === 'slow' && bytesPerSecond) answer.pipe(paced(bytesPerSecond)).pipe(res);
      else answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
    req.pipe(upstream);
  };

  const server = http.createServer((req, res) => {
    requests[mode] += 1;
    switch (mode) {
      case 'errors':
        req.resume();
        req.on('end', () => {
          res.writeHead(500, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(S3_INTERNAL_ERROR) });
          res.end(S3_INTERNAL_ERROR);
        });
        return;
      case 'slow': {
        // Paused until forwarded: the body waits in the socket, as it would behind a slow link.
        req.pause();
        const timer = setTimeout(() => forward(req, res), slowMs);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      case 'hang':
        req.pause();
        held.push(() => forward(req, res));
        return;
      default:
        forward(req, res);
    }
  });
  // The SDK's keep-alive connections: no server-side timeouts, so `hang` really hangs.
  server.keepAliveTimeout = 60_000;
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  let listening = false;
  const listen = (): Promise<void> => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      listening = true;
      resolve();
    });
  });
  const unlisten = (): Promise<void> => new Promise((resolve) => {
    listening = false;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    server.close(() => resolve());
  });
  await listen();

  return {
    port,
    get mode() { return mode; },
    get requests() { return requests; },
    async setMode(next, options = {}) {
      if (options.slowMs !== undefined) slowMs = options.slowMs;
      bytesPerSecond = options.bytesPerSecond;
      const previous = mode;
      mode = next;
      if (previous === 'hang' && next !== 'hang') {
        const release = held;
        held = [];
        for (const go of release) go();
      }
      if (next === 'refuse' && listening) await unlisten();
      if (next !== 'refuse' && !listening) await listen();
    },
    async close() {
      held = [];
      if (listening) await unlisten();
    },
  };
}

/** Passes bytes on at about `bytesPerSecond`, in slices of a 20th of a second's worth. */
function paced(bytesPerSecond: number): Transform {
  const slice = Math.max(1, Math.floor(bytesPerSecond / 20));
  return new Transform({
    async transform(chunk: Buffer, _encoding, done) {
      for (let offset = 0; offset < chunk.length; offset += slice) {
        this.push(chunk.subarray(offset, offset + slice));
        await sleep(50);
      }
      done();
    },
  });
}
