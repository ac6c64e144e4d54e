/**
 * The front end over a storage server that stops answering (RadosGW behind the fault proxy in hang
 * mode: connections accepted, requests read, nothing answered) answers 503 UNAVAILABLE with
 * Retry-After within its storage deadline (REGISTRY_STORAGE_TIMEOUT_SECONDS, default 5 s, two
 * tries) instead of holding the client for the S3 client's minutes; requests that need no storage
 * (manifest PUT, blob HEAD) are not held at all. A pull whose bytes keep flowing slowly for longer
 * than the deadline completes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../../test/reliability/faults/fault-proxy.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { RADOSGW } from '../../test/servers/storage-endpoints.ts';
import { V2Client, errorCode, expectStatus, imageManifest, sha256 } from './test-support.ts';

/** This worktree's port range is 23500-23599. */
const PROXY_PORT = 23520;
/** The default front-end deadline, two tries of it, plus the SDK's backoff and a loaded machine's slack. */
const BOUND_MS = 2 * 5000 + 3000;
const repo = 'alice/deadlines';
let proxy: FaultProxy;
let registry: TestRegistry;
let client: V2Client;

beforeAll(async () => {
  proxy = await startFaultProxy(PROXY_PORT, { host: RADOSGW.host, port: RADOSGW.port });
  registry = await startTestRegistry({
    label: 'v2deadlines',
    config: {
      DISTRIBUTED_STORAGE_CONFIG: {
        default: ['RadosGWStorage', {
          hostname: '127.0.0.1', port: PROXY_PORT, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey,
          bucket_name: RADOSGW.bucket, storage_path: `deadlines-${randomBytes(4).toString('hex')}`,
        }],
      },
    },
  });
  await registry.createUser('alice', 'password1');
  client = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', [`repository:${repo}:pull,push`]));
}, 60_000);
afterAll(async () => {
  await registry?.close();
  await proxy?.close();
});

async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = Date.now();
  const value = await run();
  return { ms: Date.now() - started, value };
}

describe('the front end over a silent storage server', () => {
  it('answers 503 with Retry-After within its deadline where storage is needed, and at once where it is not', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = randomBytes(1000);
    await client.uploadBlob(repo, config, 'monolithic');
    await client.uploadBlob(repo, layer, 'monolithic');
    await proxy.setMode('hang');
    try {
      const get = await timed(() => client.request('GET', `/v2/${repo}/blobs/${sha256(layer)}`));
      expect(get.value.statusCode).toBe(503);
      expect(errorCode(get.value)).toBe('UNAVAILABLE');
      expect(get.value.headers['retry-after']).toBeDefined();
      expect(get.ms).toBeLessThan(BOUND_MS);
      const upload = await timed(() => client.request('POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(Buffer.from('new'))}`, {
        payload: Buffer.from('new'), headers: { 'content-type': 'application/octet-stream' },
      }));
      expect(upload.value.statusCode).toBe(503);
      expect(upload.ms).toBeLessThan(BOUND_MS);
      // Manifests and blob metadata live in the database: a hung storage server does not hold them.
      const head = await timed(() => client.request('HEAD', `/v2/${repo}/blobs/${sha256(layer)}`));
      expect(head.value.statusCode).toBe(200);
      const put = await timed(() => client.putManifest(repo, imageManifest(config, [layer]), 'v1'));
      expectStatus(put.value, 201);
      console.log(`storage silent, REGISTRY_STORAGE_TIMEOUT_SECONDS 5: blob GET 503 in ${get.ms} ms, blob upload 503 in ${upload.ms} ms; `
        + `blob HEAD 200 in ${head.ms} ms, manifest PUT 201 in ${put.ms} ms`);
    } finally {
      await proxy.setMode('pass');
    }
    const again = expectStatus(await client.request('GET', `/v2/${repo}/blobs/${sha256(layer)}`), 200);
    expect(again.rawPayload.equals(layer)).toBe(true);
  }, 120_000);

  // 16 MiB in CI; STORAGE_DEADLINE_PULL_MIB=64 for the measurement in the README.
  const mib = Number(process.env.STORAGE_DEADLINE_PULL_MIB ?? 16);
  it(`completes a ${mib} MiB pull that flows slowly for longer than the deadline`, async () => {
    const blob = randomBytes(mib * 1024 * 1024);
    const digest = await client.uploadBlob(repo, blob, 'monolithic');
    // At least 8 s of flowing bytes against the 5 s deadline.
    await proxy.setMode('slow', { slowMs: 1000, bytesPerSecond: (mib / 8) * 1024 * 1024 });
    try {
      const pull = await timed(() => client.request('GET', `/v2/${repo}/blobs/${digest}`));
      expect(pull.value.statusCode).toBe(200);
      expect(createHash('sha256').update(pull.value.rawPayload).digest('hex')).toBe(digest.slice('sha256:'.length));
      expect(pull.ms).toBeGreaterThan(5000);
      console.log(`storage slow (1 s to answer, ${mib / 8} MiB/s): ${mib} MiB pull completed in ${pull.ms} ms`);
    } finally {
      await proxy.setMode('pass');
    }
  }, 300_000);
});
