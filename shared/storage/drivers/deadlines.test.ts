/**
 * Every cloud driver gives up on a storage server that accepts connections and then says nothing,
 * within its deadline (attempts x idle, plus backoff), and never cuts a read that keeps flowing,
 * however long it takes. Each driver runs against its real server behind the fault proxy of the
 * reliability harness (hang: requests read, nothing answered; slow: answers paced).
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../../../test/reliability/faults/fault-proxy.ts';
import { AZURITE, GCS_EMULATOR, RADOSGW, RADOSGW_SWIFT } from '../../../test/servers/storage-endpoints.ts';
import { StorageError } from '../errors.ts';
import { DEFAULT_STORAGE_TIMEOUTS, type StorageTimeouts } from '../timeouts.ts';
import type { ObjectStore } from '../types.ts';
import { createObjectStore, loadStorageDrivers } from './index.ts';

await loadStorageDrivers();

/** Short deadlines so the test is quick: 1 s of silence, two tries. */
const TIMEOUTS: StorageTimeouts = { idleMs: 1000, streamIdleMs: 1000, attempts: 2 };
/** What a hung request may take at most: two tries of 1 s, the SDKs' backoff, a loaded machine. */
const HANG_BOUND_MS = 6000;
const proxies: FaultProxy[] = [];
afterAll(async () => { await Promise.all(proxies.map((p) => p.close())); });

function keyFile(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return JSON.stringify({
    type: 'service_account', project_id: GCS_EMULATOR.projectId,
    client_email: `quayfleet-test@${GCS_EMULATOR.projectId}.iam.gserviceaccount.com`, private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
  });
}

/** Each driver, built against its server through a proxy on `port` (this worktree's range 23500-23599). */
const DRIVERS: { name: string; port: number; target: { host: string; port: number }; create(proxy: string, timeouts?: StorageTimeouts): ObjectStore }[] = [
  {
    name: 'RadosGWStorage', port: 23500, target: RADOSGW,
    create: (proxy, timeouts = TIMEOUTS) => createObjectStore('RadosGWStorage', {
      hostname: '127.0.0.1', port: proxy.split(':')[2], access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey,
      bucket_name: RADOSGW.bucket, storage_path: 'deadlines',
    }, {}, timeouts),
  },
  {
    name: 'AzureStorage', port: 23501, target: AZURITE,
    create: (proxy, timeouts = TIMEOUTS) => createObjectStore('AzureStorage', {
      azure_container: AZURITE.container, azure_account_name: AZURITE.accountName, azure_account_key: AZURITE.accountKey,
      endpoint_url: `${proxy}/${AZURITE.accountName}`, storage_path: 'deadlines',
    }, {}, timeouts),
  },
  {
    name: 'GoogleCloudStorage', port: 23502, target: GCS_EMULATOR,
    create: (proxy, timeouts = TIMEOUTS) => createObjectStore('GoogleCloudStorage', {
      bucket_name: GCS_EMULATOR.bucket, storage_path: 'deadlines', api_endpoint: proxy,
    }, { REGISTRY_STORAGE_GCS_KEYFILE: keyFile() }, timeouts),
  },
  {
    name: 'SwiftStorage', port: 23503, target: RADOSGW,
    create: (proxy, timeouts = TIMEOUTS) => createObjectStore('SwiftStorage', {
      auth_url: `${proxy}/auth/1.0`, swift_user: RADOSGW_SWIFT.user, swift_password: RADOSGW_SWIFT.key, swift_container: RADOSGW_SWIFT.container,
      storage_path: 'deadlines', os_options: { object_storage_url: `${proxy}/swift/v1` },
    }, {}, timeouts),
  },
];

async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** How long `operation` took to fail, and what it failed with. */
async function failure(operation: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = Date.now();
  const error = await operation().then(() => undefined, (e: unknown) => e);
  return { ms: Date.now() - started, error };
}

describe.each(DRIVERS)('$name behind a silent server', ({ name, port, target, create }) => {
  it('fails stat, small put and get within its deadline, and works again once the server answers', async () => {
    const proxy = await startFaultProxy(port, { host: target.host, port: target.port });
    proxies.push(proxy);
    const store = create(`http://127.0.0.1:${port}`);
    const key = `hang/${randomBytes(4).toString('hex')}`;
    await store.put(key, Buffer.from('held'), { contentLength: 4 }); // authenticates (Swift) and warms connections
    await proxy.setMode('hang');
    const results: Record<string, number> = {};
    for (const [operation, run] of Object.entries({
      stat: () => store.stat(key),
      put: () => store.put(`${key}-2`, Buffer.from('manifest-sized'), { contentLength: 14 }),
      get: () => store.get(key).then(sha256Of),
    })) {
      const { ms, error } = await failure(run);
      results[operation] = ms;
      expect(error, `${name} ${operation}`).toBeInstanceOf(StorageError);
      expect(ms, `${name} ${operation} took ${ms} ms`).toBeLessThan(HANG_BOUND_MS);
    }
    await proxy.setMode('pass');
    expect((await store.stat(key)).size).toBe(4);
    await store.delete(key);
    console.log(`${name} silent server: stat ${results.stat} ms, put ${results.put} ms, get ${results.get} ms (idle 1 s, 2 tries)`);
  }, 60_000);
});

describe.each(DRIVERS)('$name behind a slow server', ({ name, port, target, create }) => {
  it('reads 4 MiB that flow for several times the deadline without cutting it', async () => {
    const proxy = await startFaultProxy(port + 10, { host: target.host, port: target.port });
    proxies.push(proxy);
    const store = create(`http://127.0.0.1:${port + 10}`);
    const key = `slow/${randomBytes(4).toString('hex')}`;
    const bytes = randomBytes(4 * 1024 * 1024);
    // Written with a worker's deadlines: a loaded server may take over a second to store it.
    await create(`http://127.0.0.1:${port + 10}`, DEFAULT_STORAGE_TIMEOUTS).put(key, bytes, { contentLength: bytes.length });
    // 1 MiB/s: about 4 s of flowing bytes against a 1 s deadline; the answer starts 300 ms late.
    await proxy.setMode('slow', { slowMs: 300, bytesPerSecond: 1024 * 1024 });
    const started = Date.now();
    expect(await sha256Of(await store.get(key))).toBe(createHash('sha256').update(bytes).digest('hex'));
    const ms = Date.now() - started;
    expect(ms).toBeGreaterThan(3 * TIMEOUTS.idleMs);
    await proxy.setMode('pass');
    await store.delete(key);
    console.log(`${name} slow server: 4 MiB read in ${ms} ms, never idle 1 s`);
  }, 120_000);
});
