import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AZURITE } from '../../test/servers/storage-endpoints.ts';
import { digestOfBuffer, readSmall } from './conformance/data.ts';
import { DistributedStorage, createDistributedStorage } from './distributed.ts';
import { createObjectStore, loadStorageDrivers } from './drivers/index.ts';
import { NotFoundError, StorageError } from './errors.ts';
import { blobKey } from './keys.ts';
import type { ObjectStore } from './types.ts';

// The cloud drivers load on demand (drivers/index.ts); this file uses them directly.
await loadStorageDrivers();

const root = mkdtempSync(path.join(os.tmpdir(), 'quayfleet-distributed-'));
const blob = Buffer.from('a layer that lives in several locations');
const digest = digestOfBuffer(blob);
const key = blobKey(digest);
const storagePath = `distributed-${path.basename(root)}`;

let stores: Record<string, ObjectStore>;
beforeAll(async () => {
  stores = {
    usstorage: createObjectStore('LocalStorage', { storage_path: path.join(root, 'us') }),
    eustorage: createObjectStore('AzureStorage', {
      azure_container: AZURITE.container, azure_account_name: AZURITE.accountName, azure_account_key: AZURITE.accountKey,
      endpoint_url: AZURITE.endpoint, storage_path: storagePath,
    }),
    apstorage: createObjectStore('LocalStorage', { storage_path: path.join(root, 'ap') }),
    // Nothing listens on port 9: every request to this location fails.
    down: createObjectStore('RadosGWStorage', { hostname: '127.0.0.1', port: 9, access_key: 'k', secret_key: 's', bucket_name: 'b' }),
  };
  for (const name of ['usstorage', 'eustorage', 'apstorage']) await stores[name]!.put(key, blob);
});
afterAll(async () => {
  await stores.eustorage!.delete(key);
  await Promise.all(Object.values(stores).map((s) => s.close()));
  rmSync(root, { recursive: true, force: true });
});

function distributed(preferenceOverride?: string): DistributedStorage {
  return new DistributedStorage({ stores, preference: ['usstorage', 'eustorage'], defaultLocations: ['eustorage', 'apstorage'], preferenceOverride });
}

describe('DistributedStorage', () => {
  it('prefers the configured order, with the per-pod override first', () => {
    expect(distributed().preferredLocation).toBe('usstorage');
    expect(distributed().preference).toEqual(['usstorage', 'eustorage']);
    const eu = distributed('eustorage');
    expect(eu.preferredLocation).toBe('eustorage');
    expect(eu.preference).toEqual(['eustorage', 'usstorage']);
    expect(eu.preferredStore()).toBe(stores.eustorage);
    expect(eu.readOrder(['apstorage', 'usstorage', 'eustorage', 'removed'])).toEqual(['eustorage', 'usstorage', 'apstorage']);
  });

  it('refuses an override, preference or default location naming an unknown location', () => {
    expect(() => distributed('asia')).toThrow('QUAY_DISTRIBUTED_STORAGE_PREFERENCE names unknown storage location(s) "asia" (known: usstorage, eustorage, apstorage, down)');
    expect(() => new DistributedStorage({ stores, preference: ['mars'] })).toThrow('DISTRIBUTED_STORAGE_PREFERENCE names unknown storage location(s) "mars"');
    expect(() => new DistributedStorage({ stores, preference: [], defaultLocations: ['mars'] })).toThrow('DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS');
    expect(() => new DistributedStorage({ stores: {}, preference: [] })).toThrow('must contain at least one storage location');
    expect(() => distributed().store('mars')).toThrow('unknown storage location "mars"');
  });

  it('lists the locations a blob must reach: preferred, defaults, then extras', () => {
    expect(distributed().requiredLocations()).toEqual(['usstorage', 'eustorage', 'apstorage']);
    expect(distributed('apstorage').requiredLocations(['down', 'eustorage'])).toEqual(['apstorage', 'eustorage', 'down']);
    expect(() => distributed().requiredLocations(['mars'])).toThrow('replication location names unknown');
  });

  it('reads from the most preferred placement that holds the blob', async () => {
    const opened = await distributed('eustorage').openBlob(digest, ['usstorage', 'eustorage']);
    expect(opened.location).toBe('eustorage');
    expect(await readSmall(opened.stream)).toEqual(blob);
    const ranged = await distributed().openBlob(digest, ['apstorage', 'usstorage'], { start: 2, end: 6 });
    expect(ranged.location).toBe('usstorage');
    expect((await readSmall(ranged.stream)).toString()).toBe('layer');
  });

  it('falls back to the next placement when the preferred copy is missing, corrupt or unreachable', async () => {
    await stores.usstorage!.delete(key);
    const missing = await distributed().openBlob(digest, ['usstorage', 'apstorage']);
    expect(missing.location).toBe('apstorage');
    await readSmall(missing.stream);

    await stores.usstorage!.put(key, blob.subarray(0, 10)); // a truncated copy
    const corrupt = await distributed().openBlob(digest, ['usstorage', 'apstorage'], undefined, { expectedSize: blob.length });
    expect(corrupt.location).toBe('apstorage');
    expect(await readSmall(corrupt.stream)).toEqual(blob);
    await stores.usstorage!.put(key, blob);

    const down = new DistributedStorage({ stores, preference: ['down', 'apstorage'] });
    const unreachable = await down.openBlob(digest, ['apstorage', 'down']);
    expect(unreachable.location).toBe('apstorage');
    await readSmall(unreachable.stream);
  });

  it('reports a blob no placement holds as NotFound, and unreadable placements as a StorageError', async () => {
    const other = blobKey(digestOfBuffer(Buffer.from('never stored')));
    const otherDigest = `sha256:${other.slice(other.lastIndexOf('/') + 1)}`;
    await expect(distributed().openBlob(otherDigest, ['usstorage', 'apstorage'])).rejects.toBeInstanceOf(NotFoundError);
    await expect(distributed().openBlob(digest, [])).rejects.toBeInstanceOf(NotFoundError);
    const failure = await distributed().openBlob(otherDigest, ['usstorage', 'down']).then(() => undefined, (e: unknown) => e as StorageError);
    expect(failure).toBeInstanceOf(StorageError);
    expect(failure).not.toBeInstanceOf(NotFoundError);
    expect(failure?.message).toContain('usstorage: LocalStorage get');
    expect(failure?.message).toContain('down: RadosGWStorage get');
  });

  it('is built from Quay\'s config keys, naming the location of a bad entry', async () => {
    const config = {
      DISTRIBUTED_STORAGE_CONFIG: { default: ['LocalStorage', { storage_path: path.join(root, 'cfg') }] as const },
      DISTRIBUTED_STORAGE_PREFERENCE: ['default'],
      DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [],
    };
    const built = await createDistributedStorage(config);
    expect(built.locations).toEqual(['default']);
    expect(built.preferredStore().driverName).toBe('LocalStorage');
    await built.close();
    await expect(createDistributedStorage({ ...config, DISTRIBUTED_STORAGE_CONFIG: { eu: ['S3Storage', {}] } }))
      .rejects.toThrow('DISTRIBUTED_STORAGE_CONFIG.eu: S3Storage: missing required parameter "s3_bucket"');
    await expect(createDistributedStorage(config, { preferenceOverride: 'nowhere' })).rejects.toThrow('QUAY_DISTRIBUTED_STORAGE_PREFERENCE');
  });
});
