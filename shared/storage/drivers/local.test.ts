import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { readSmall } from '../conformance/data.ts';
import { InvalidKeyError } from '../errors.ts';
import { drain } from '../conformance/objects.ts';
import { describeObjectStore } from '../conformance.ts';
import { createObjectStore } from './index.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'quayfleet-local-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describeObjectStore('LocalStorage', {
  create: () => createObjectStore('LocalStorage', { storage_path: path.join(root, 'registry') }),
  createPeer: () => createObjectStore('LocalStorage', { storage_path: path.join(root, 'peer') }),
});

describe('LocalStorage specifics', () => {
  it('refuses a key that is also a directory of other keys (a filesystem cannot hold both)', async () => {
    const store = createObjectStore('LocalStorage', { storage_path: path.join(root, 'specifics') });
    await store.put('a/b', Buffer.from('file'));
    await expect(store.put('a/b/c', Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
    await store.put('x/y/z', Buffer.from('file'));
    await expect(store.put('x/y', Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
    expect((await drain(store.list(''))).map((o) => o.key)).toEqual(['a/b', 'x/y/z']);
    await store.deleteMany(['a/b', 'x/y/z']);
    expect(readdirSync(path.join(root, 'specifics')).filter((n) => !n.startsWith('.'))).toEqual([]);
  });

  it('sweeps the temp files a killed process left mid-write once they are older than the threshold, never a live write\'s', async () => {
    const storagePath = path.join(root, 'crash');
    const child = spawn(process.execPath, ['--import', 'tsx', 'shared/storage/drivers/local-crash-child.ts', storagePath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = await once(child.stdout, 'data') as [Buffer];
    expect(line.toString().trim()).toBe('writing');
    child.kill('SIGKILL');
    await once(child, 'exit');
    const tmp = path.join(storagePath, '.quayfleet', 'tmp');
    const [leftover] = readdirSync(tmp);
    expect(leftover).toBeDefined();

    const store = createObjectStore('LocalStorage', { storage_path: storagePath });
    const live = new PassThrough();
    const writing = store.put('live/object', live);
    live.write('live bytes ');
    const dayAgo = (): Date => new Date(Date.now() - 24 * 3600_000);
    // Fresh: both look alive, nothing goes.
    expect(await store.sweepTemporaryFiles!(dayAgo())).toEqual({ files: 0, bytes: 0 });
    // Two days on (the leftover's mtime moved back), only the dead write's file goes.
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600_000);
    utimesSync(path.join(tmp, leftover!), twoDaysAgo, twoDaysAgo);
    const size = statSync(path.join(tmp, leftover!)).size;
    expect(await store.sweepTemporaryFiles!(dayAgo())).toEqual({ files: 1, bytes: size });
    expect(readdirSync(tmp)).toHaveLength(1);
    live.end('end');
    await writing;
    expect((await readSmall(await store.get('live/object'))).toString()).toBe('live bytes end');
    expect(await store.exists('crashed/object')).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
    // No temp directory at all (a location never written to) is not an error.
    expect(await createObjectStore('LocalStorage', { storage_path: path.join(root, 'never') }).sweepTemporaryFiles!(new Date())).toEqual({ files: 0, bytes: 0 });
  });
});
