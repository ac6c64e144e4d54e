/** The fault proxy itself, in front of a plain HTTP server: each mode fails the way it says. */
import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';

const PROXY_PORT = 22230;
let target: http.Server;
let proxy: FaultProxy;
const url = `http://127.0.0.1:${PROXY_PORT}/bucket/key`;

beforeAll(async () => {
  // Echoes method, path, Host and body: what the proxy forwards must arrive unchanged.
  target = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => {
      res.end(JSON.stringify({ method: req.method, path: req.url, host: req.headers.host, body: Buffer.concat(chunks).toString() }));
    });
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  proxy = await startFaultProxy(PROXY_PORT, { host: '127.0.0.1', port: (target.address() as net.AddressInfo).port });
});
afterAll(async () => {
  await proxy.close();
  await new Promise((resolve) => target.close(resolve));
});

describe('fault proxy', () => {
  it('passes requests through unchanged (Host kept, so S3 signatures stay valid)', async () => {
    const answer = await fetch(url, { method: 'PUT', body: 'bytes' });
    expect(await answer.json()).toEqual({ method: 'PUT', path: '/bucket/key', host: `127.0.0.1:${PROXY_PORT}`, body: 'bytes' });
  });

  it('answers S3 InternalError 500s in errors mode, and passes again once healed', async () => {
    await proxy.setMode('errors');
    const answer = await fetch(url, { method: 'PUT', body: 'bytes' });
    expect(answer.status).toBe(500);
    expect(await answer.text()).toContain('<Code>InternalError</Code>');
    await proxy.setMode('pass');
    expect((await fetch(url)).status).toBe(200);
  });

  it('delays every request in slow mode', async () => {
    await proxy.setMode('slow', { slowMs: 400 });
    const started = Date.now();
    expect((await fetch(url)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    await proxy.setMode('pass');
  });

  it('holds requests without an answer in hang mode and forwards them when healed', async () => {
    await proxy.setMode('hang');
    let answered = false;
    const pending = fetch(url, { method: 'POST', body: 'held' }).then(async (r) => { answered = true; return r.json(); });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(answered).toBe(false);
    await proxy.setMode('pass');
    expect(await pending).toMatchObject({ method: 'POST', body: 'held' });
  });

  it('refuses connections in refuse mode and listens again on the same port', async () => {
    await proxy.setMode('refuse');
    // The client's kept-alive connection was cut ('other side closed'); a new one is refused.
    await expect(fetch(url)).rejects.toThrow();
    await expect(fetch(url)).rejects.toMatchObject({ cause: { code: 'ECONNREFUSED' } });
    await proxy.setMode('pass');
    expect((await fetch(url)).status).toBe(200);
    expect(proxy.requests.errors).toBe(1);
  });
});
