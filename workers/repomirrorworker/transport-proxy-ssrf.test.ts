/**
 * Through a proxy the mirror worker connects to the proxy, so the SSRF policy applies to the
 * proxy's address (by literal and by name, per connection): a proxy on loopback is never
 * reached unless SSRF_ALLOWED_HOSTS admits it (found by the reliability security part).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Transport, UpstreamConnectionError } from './transport.ts';

let server: http.Server;
let port: number;
let hits = 0;

beforeAll(async () => {
  server = http.createServer((_request, response) => { hits++; response.end('proxied'); });
  server.on('connect', (_request, socket) => { hits++; socket.end('HTTP/1.1 403 Forbidden\r\n\r\n'); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const send = (proxy: Record<string, string>, target: string, allowedHosts: string[]) => {
  const transport = new Transport({ verifyTls: false, idleTimeoutMs: 2000, proxy, ssrf: { allowedHosts, blockedHostnames: [] } });
  return transport.send(new URL(target), { method: 'GET', headers: {} }).finally(() => transport.close());
};

describe('a proxy on a refused address', () => {
  it('is not connected to, by address or by a name resolving to it, for http and https targets', async () => {
    for (const [key, target] of [['http_proxy', 'http://upstream.example/v2/'], ['https_proxy', 'https://upstream.example/v2/']]) {
      for (const proxy of [`http://127.0.0.1:${port}`, `http://localhost:${port}`]) {
        await expect(send({ [key!]: proxy }, target!, ['upstream.example'])).rejects.toBeInstanceOf(UpstreamConnectionError);
      }
    }
    expect(hits).toBe(0);
  });

  it('is used when SSRF_ALLOWED_HOSTS admits it', async () => {
    const response = await send({ http_proxy: `http://127.0.0.1:${port}` }, 'http://upstream.example/v2/', ['upstream.example', '127.0.0.1']);
    response.resume();
    expect(response.statusCode).toBe(200);
    expect(hits).toBe(1);
  });
});
