/**
 * Mirroring over TLS from a real upstream: distribution serving HTTPS on 127.0.0.1:21101 with a
 * certificate from a throw-away CA (same storage as a plain-HTTP distribution on 21100, which the
 * test uses to push and to read the expected digests). verify_tls on with the CA from the extra
 * CA directory (for every upstream, or in the upstream's own `host:port` sub-directory), on
 * without it (Quay's x509 error), off (no CA needed), a plain-HTTP upstream with verify_tls on,
 * and HTTPS through an HTTP CONNECT proxy with connections kept alive.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RepoMirrorStatus } from '../../shared/db/mirrors.ts';
import { startCountingProxy, type CountingProxy } from '../../test/helpers/counting-proxy.ts';
import { startDistribution, type Distribution } from '../../test/helpers/distribution.ts';
import type { TestRegistry } from '../../test/helpers/registry.ts';
import { makeTestCertificates, type TestCertificates } from '../../test/helpers/tls-certs.ts';
import { extraCaDirOf, extraCaFor } from './extra-ca.ts';
import { buildLayout, createMirrorRepo, localTags, mirrorOf, pullFromQuayfleet, startMirrorRegistry, syncNow, testSettings, upstreamDigest } from './test-support.ts';

const PLAIN_PORT = 21100;
const TLS_PORT = 21101;
const TLS_AUTHORITY = `127.0.0.1:${TLS_PORT}`;
let reg: TestRegistry;
let plain: Distribution;
let secure: Distribution;
let proxy: CountingProxy;
let work: string;
let certs: TestCertificates;
let expected: Record<string, string>;

/** An extra CA directory holding the test CA at `sub` (relative; '' = top level). */
async function caDir(name: string, sub: string | undefined): Promise<string> {
  const dir = path.join(work, name);
  await fs.mkdir(path.join(dir, sub ?? ''), { recursive: true });
  if (sub !== undefined) await fs.copyFile(certs.caCertificate, path.join(dir, sub, 'upstream-ca.crt'));
  return dir;
}

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'quayfleet-mirror-tls-'));
  const layout = await buildLayout(2);
  [reg, certs, proxy] = await Promise.all([startMirrorRegistry(), makeTestCertificates(path.join(work, 'pki')), startCountingProxy()]);
  const data = path.join(work, 'upstream');
  await fs.mkdir(data);
  plain = await startDistribution(PLAIN_PORT, { dir: data });
  await Promise.all([plain.push(layout.dir, 'img0', 'library/app', 'v1'), plain.push(layout.dir, 'multi', 'library/app', 'multi')]);
  await plain.push(layout.dir, 'img1', 'library/app', 'v2');
  secure = await startDistribution(TLS_PORT, { dir: data, tls: { certificate: certs.certificate, key: certs.key } });
  expected = Object.fromEntries(await Promise.all(['multi', 'v1', 'v2'].map(async (t) => [t, await upstreamDigest(plain.authority, 'library/app', t)])));
  await fs.rm(layout.dir, { recursive: true, force: true });
}, 240_000);

afterAll(async () => {
  await Promise.all([reg?.close(), plain?.stop(), secure?.stop(), proxy?.stop()]);
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('an HTTPS upstream with a self-signed CA', () => {
  it('HTTPS through an HTTP CONNECT proxy, verified, over a few kept-alive tunnels (first: every blob crosses)', async () => {
    const id = await createMirrorRepo(reg, 'tls-proxied', {
      external: `${TLS_AUTHORITY}/library/app`, patterns: ['*'], registryConfig: { verify_tls: true, proxy: { https_proxy: proxy.url } },
    });
    const requests: string[] = [];
    const settings = testSettings({ extraCaDir: await caDir('proxied', ''), onUpstreamRequest: (method, url) => requests.push(`${method} ${url.pathname}`) });
    expect(await syncNow(reg, id, settings)).toBe('SUCCESS');
    expect(await localTags(reg, id)).toEqual(expected);
    expect(proxy.tunnels.length).toBeGreaterThan(0);
    expect(new Set(proxy.tunnels)).toEqual(new Set([TLS_AUTHORITY]));
    // Every request went through a tunnel, and tunnels were reused (at most one per transfer slot).
    expect(proxy.requests).toEqual([]);
    expect(requests.length).toBeGreaterThan(10);
    expect(proxy.tunnels.length).toBeLessThanOrEqual(testSettings().blobsPerSync + 2);
  });

  it('verify_tls on, the CA in the extra CA directory: mirrored, digests as upstream', async () => {
    const id = await createMirrorRepo(reg, 'tls-trusted', { external: `${TLS_AUTHORITY}/library/app`, patterns: ['*'], registryConfig: { verify_tls: true } });
    expect(await syncNow(reg, id, testSettings({ extraCaDir: await caDir('all', '') }))).toBe('SUCCESS');
    expect(await localTags(reg, id)).toEqual(expected);
    expect((await pullFromQuayfleet(reg, 'tls-trusted', 'v2')).digest).toBe(expected.v2);
  });

  it('verify_tls on without the CA: fails with the x509 error and what to do', async () => {
    const id = await createMirrorRepo(reg, 'tls-untrusted', { external: `${TLS_AUTHORITY}/library/app`, patterns: ['*'], registryConfig: { verify_tls: true } });
    expect(await syncNow(reg, id, testSettings({ extraCaDir: await caDir('none', undefined) }))).toBe('FAIL');
    const mirror = await mirrorOf(reg, id);
    expect(mirror.sync_status).toBe(RepoMirrorStatus.FAIL);
    expect(mirror.sync_last_error).toMatch(/x509: certificate signed by unknown authority.*extra_ca_certs/);
    expect(await localTags(reg, id)).toEqual({});
  });

  it('verify_tls unset means on (Quay\'s default)', async () => {
    const id = await createMirrorRepo(reg, 'tls-default', { external: `${TLS_AUTHORITY}/library/app`, patterns: ['v1'], registryConfig: {} });
    expect(await syncNow(reg, id, testSettings({ extraCaDir: await caDir('none2', undefined) }))).toBe('FAIL');
    expect((await mirrorOf(reg, id)).sync_last_error).toMatch(/x509/);
  });

  it('verify_tls off: mirrored over HTTPS without the CA', async () => {
    const id = await createMirrorRepo(reg, 'tls-insecure', { external: `${TLS_AUTHORITY}/library/app`, patterns: ['v*'], registryConfig: { verify_tls: false } });
    expect(await syncNow(reg, id, testSettings({ extraCaDir: await caDir('none3', undefined) }))).toBe('SUCCESS');
    expect(await localTags(reg, id)).toEqual({ v1: expected.v1, v2: expected.v2 });
  });

  it('a CA in the upstream\'s host:port sub-directory is trusted for it only', async () => {
    const own = await createMirrorRepo(reg, 'tls-own-ca', { external: `${TLS_AUTHORITY}/library/app`, patterns: ['v1'], registryConfig: { verify_tls: true } });
    expect(await syncNow(reg, own, testSettings({ extraCaDir: await caDir('per-host', TLS_AUTHORITY) }))).toBe('SUCCESS');
    expect(await localTags(reg, own)).toEqual({ v1: expected.v1 });
    const other = await createMirrorRepo(reg, 'tls-other-ca', { external: `${TLS_AUTHORITY}/library/app`, patterns: ['v1'], registryConfig: { verify_tls: true } });
    expect(await syncNow(reg, other, testSettings({ extraCaDir: await caDir('other-host', '127.0.0.1:9') }))).toBe('FAIL');
  });

  it('a plain-HTTP upstream with verify_tls on is refused (HTTPS required), with a clear error', async () => {
    const id = await createMirrorRepo(reg, 'tls-plain', { external: `${plain.authority}/library/app`, patterns: ['v1'], registryConfig: { verify_tls: true } });
    expect(await syncNow(reg, id)).toBe('FAIL');
    expect((await mirrorOf(reg, id)).sync_last_error).toMatch(/does not speak TLS/);
  });

});

describe('the extra CA directory', () => {
  it('is extra_ca_certs beside config.yaml, as in Quay\'s /conf/stack', () => {
    expect(extraCaDirOf({ source: '/conf/stack/config.yaml' })).toBe('/conf/stack/extra_ca_certs');
    expect(extraCaDirOf({ source: 'built-in defaults' })).toBeUndefined();
  });

  it('reads certificates only from PEM files, and a redirect\'s odd host name picks no sub-directory', async () => {
    const dir = await caDir('mixed', '');
    await fs.writeFile(path.join(dir, 'notes.txt'), certs.caPem);
    await fs.writeFile(path.join(dir, 'server.key'), 'not a certificate');
    await fs.mkdir(path.join(dir, '..', 'mixed-parent-probe'), { recursive: true });
    expect(await extraCaFor(dir, new URL(`https://${TLS_AUTHORITY}/v2/`))).toEqual([certs.caPem.trim()]);
    expect(await extraCaFor(path.join(dir, 'sub'), new URL('https://../v2/'))).toEqual([]);
    expect(await extraCaFor(undefined, new URL(`https://${TLS_AUTHORITY}/v2/`))).toEqual([]);
  });
});
