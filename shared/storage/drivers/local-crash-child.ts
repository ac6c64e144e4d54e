/**
 * Child of local.test.ts: starts a LocalStorage put whose body never ends under argv[2], prints
 * `writing` once the put's temp file exists, and waits to be killed (a crash mid-write).
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createObjectStore } from './index.ts';

const root = process.argv[2]!;
const store = createObjectStore('LocalStorage', { storage_path: root });
const body = new PassThrough();
void store.put('crashed/object', body).catch(() => undefined);
body.write(Buffer.alloc(64 * 1024, 7));
const tmp = path.join(root, '.quayfleet', 'tmp');
// The temp file appears once the write stream opens it; nothing signals that, so look for it.
while ((() => {
  try {
    return readdirSync(tmp).length === 0;
  } catch {
    return true;
  }
})()) await sleep(10);
console.log('writing');
await new Promise(() => undefined);
