import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { checkUrl, checkUrlTarget, guardedLookup, SsrfRefusedError, type SsrfPolicy } from './ssrf.ts';

const strict: SsrfPolicy = { allowedHosts: [], blockedHostnames: ['evil.example'] };
const resolveTo = (...addresses: string[]) => async () => addresses;

describe('checkUrl / checkUrlTarget', () => {
  it.each([
    ['ftp://example.com/', 'http or https'],
    ['not a url', 'Invalid URL'],
    ['http://user:pw@example.com/', 'credentials'],
    ['http://evil.example/hook', 'not allowed'],
    ['http://localhost:8080/', 'not allowed'],
    ['http://127.0.0.1/', 'loopback'],
    ['http://[::1]/', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'],
    ['http://169.254.169.254/latest/meta-data', 'linkLocal'],
    ['http://10.1.2.3/', 'private'],
    ['http://192.168.0.1/', 'private'],
    ['http://100.64.0.1/', 'carrierGradeNat'],
    ['http://[fd00::1]/', 'uniqueLocal'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://224.0.0.1/', 'multicast'],
  ])('refuses %s', (url, why) => {
    expect(() => checkUrl(strict, url)).toThrow(SsrfRefusedError);
    expect(() => checkUrl(strict, url)).toThrow(why);
  });

  it('refuses a name that resolves to a private address, accepts one that resolves to a public one', async () => {
    await expect(checkUrlTarget(strict, 'http://hooks.example/x', resolveTo('93.184.216.34', '10.0.0.5'))).rejects.toThrow('private');
    await expect(checkUrlTarget(strict, 'http://hooks.example/x', async () => { throw new Error('NXDOMAIN'); })).rejects.toThrow('could not be resolved');
    expect((await checkUrlTarget(strict, 'https://hooks.example/x', resolveTo('93.184.216.34'))).host).toBe('hooks.example');
  });

  it('lets SSRF_ALLOWED_HOSTS admit a name, an address or a range, but never a blacklisted host', async () => {
    expect(checkUrl({ allowedHosts: ['127.0.0.1'], blockedHostnames: [] }, 'http://127.0.0.1:9/').port).toBe('9');
    expect(checkUrl({ allowedHosts: ['10.0.0.0/8'], blockedHostnames: [] }, 'http://10.9.9.9/').host).toBe('10.9.9.9');
    expect(checkUrl({ allowedHosts: ['localhost'], blockedHostnames: [] }, 'http://localhost/').host).toBe('localhost');
    await expect(checkUrlTarget({ allowedHosts: ['internal.example'], blockedHostnames: [] }, 'http://internal.example/', resolveTo('10.0.0.1'))).resolves.toBeInstanceOf(URL);
    expect(() => checkUrl({ allowedHosts: ['10.0.0.0/8'], blockedHostnames: [] }, 'http://11.0.0.1/')).not.toThrow();
    expect(() => checkUrl({ allowedHosts: ['10.0.0.0/8'], blockedHostnames: [] }, 'http://192.168.1.1/')).toThrow('private');
    expect(() => checkUrl({ allowedHosts: ['evil.example'], blockedHostnames: ['evil.example'] }, 'http://evil.example/')).toThrow('not allowed');
  });
});

describe('guardedLookup', () => {
  it('refuses at connection time a name resolving to loopback, unless allowed', async () => {
    const server = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const get = (policy: SsrfPolicy) => new Promise<number>((resolve, reject) => {
      http.get({ host: 'localhost', port, family: 4, lookup: guardedLookup(policy) }, (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject);
    });
    try {
      await expect(get(strict)).rejects.toThrow('loopback');
      await expect(get({ allowedHosts: ['127.0.0.0/8'], blockedHostnames: [] })).resolves.toBe(200);
    } finally {
      server.close();
    }
  });
});
