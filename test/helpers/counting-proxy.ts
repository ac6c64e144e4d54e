/**
 * A forward HTTP proxy on loopback that counts what passes through it: plain-HTTP requests by
 * method and path (absolute-URI form) and CONNECT tunnels by target. Tests point a mirror's
 * `http_proxy` at it to see exactly which upstream requests a sync makes.
 */
import http from 'node:http';
import net from 'node:net';

export interface CountingProxy {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Every plain request seen, as `METHOD path`. */
  readonly requests: string[];
  /** CONNECT targets seen. */
  readonly tunnels: string[];
  /** Response body bytes relayed for plain requests, by path prefix `/v2/<repo>/blobs/`... (all paths summed). */
  readonly bytes: { total: number; blobs: number };
  stop(): Promise<void>;
}

/** Starts the proxy on an ephemeral loopback port. */
export async function startCountingProxy(): Promise<CountingProxy> {
  const requests: string[] = [];
  const tunnels: string[] = [];
  const bytes = { total: 0, blobs: 0 };
  const server = http.createServer((request, response) => {
    const target = new URL(request.url ?? '/');
    requests.push(`${request.method} ${target.pathname}`);
    const upstream = http.request(target, { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.on('data', (chunk: Buffer) => {
        bytes.total += chunk.length;
        if (target.pathname.includes('/blobs/')) bytes.blobs += chunk.length;
      });
      answer.pipe(response);
    });
    upstream.on('error', () => response.writeHead(502).end());
    request.pipe(upstream);
  });
  server.on('connect', (request, socket, head) => {
    tunnels.push(request.url ?? '');
    const [host, port] = (request.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, requests, tunnels, bytes,
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
