/**
 * Child of lazy-load.test.ts: builds a Local-only DistributedStorage (and with `all`, loads every
 * driver too), then prints its RSS in bytes as one JSON line.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDistributedStorage } from '../distributed.ts';
import { loadStorageDrivers } from './index.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'quayfleet-lazy-'));
const storage = await createDistributedStorage({
  DISTRIBUTED_STORAGE_CONFIG: { local: ['LocalStorage', { storage_path: root }] }, DISTRIBUTED_STORAGE_PREFERENCE: ['local'],
});
if (process.argv[2] === 'all') await loadStorageDrivers();
globalThis.gc?.();
console.log(JSON.stringify({ rss: process.memoryUsage().rss, locations: storage.locations }));
await storage.close();
