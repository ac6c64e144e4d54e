/**
 * A real front-end process SIGKILLed after an upload's bytes reached their content address but
 * before the rows committed (issue 11, "a crash can leak an object forever"). The kill is timed on
 * what an operator could observe: this test holds an uncommitted `imagestorage` row for the digest,
 * so the push's insert waits on it; the object then sits at its content address with no committed
 * row, and that is when the process dies. Once the lease has passed, the GC sweep removes the
 * object and the storage-versus-database audit is clean.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserAccount } from '../../../shared/db/accounts.ts';
import { auditStorage } from '../../../shared/db/gc/audit.ts';
import { runSweep } from '../../../shared/db/gc/run.ts';
import { withTransaction } from '../../../shared/db/pool.ts';
import { createRepository } from '../../../shared/db/repositories.ts';
import { createDistributedStorage, type DistributedStorage } from '../../../shared/storage/distributed.ts';
import { createTestDatabase, holdingTransaction, type TestDatabase } from '../../../test/helpers/db.ts';
import { basicAuth } from '../../../test/helpers/registry.ts';
import { REDIS_URL } from '../../../test/helpers/redis.ts';
import { sha256 } from '../test-support.ts';

const CLI = path.resolve(import.meta.dirname, '../../../bin/quayfleet.js');
const PORT = 18_731;
const LEASE_S = 15;

let database: TestDatabase;
let dir: string;
let storagePath: string;
let storage: DistributedStorage;

beforeAll(async () => {
  database = await createTestDatabase('commitcrash');
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qf-commit-crash-'));
  storagePath = path.join(dir, 'storage');
  const storageConfig = { DISTRIBUTED_STORAGE_CONFIG: { default: ['LocalStorage', { storage_path: storagePath }] as [string, Record<string, unknown>] }, DISTRIBUTED_STORAGE_PREFERENCE: ['default'] };
  await fs.writeFile(path.join(dir, 'config.yaml'), JSON.stringify({
    ...storageConfig, SERVER_HOSTNAME: `127.0.0.1:${PORT}`, SECRET_KEY: 'commit-crash-test', PUSH_TEMP_TAG_EXPIRATION_SEC: LEASE_S,
  }));
  storage = await createDistributedStorage(storageConfig);
  const alice = await withTransaction(database.pool, (tx) => createUserAccount(tx, { username: 'alice', password: 'password1', email: 'alice@example.com' }));
  await createRepository(database.pool, { namespaceId: alice.id, name: 'leak', visibility: 'private' });
});

afterAll(async () => {
  await database?.drop();
  await fs.rm(dir, { recursive: true, force: true });
});

function startFrontEnd(): { child: ChildProcess; exited: Promise<unknown> } {
  const child = spawn(process.execPath, [CLI, 'registry'], {
    cwd: dir,
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME, DB_URI: database.url, REDIS_URL, LOG_LEVEL: 'warn',
      QUAYFLEET_CONFIG: path.join(dir, 'config.yaml'), QUAYFLEET_HTTP_PORT: String(PORT), QUAYFLEET_METRICS_PORT: String(PORT + 1),
      QUAYFLEET_DATA_DIR: path.join(dir, 'data'),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { child, exited: new Promise((resolve) => child.once('exit', resolve)) };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function blobRows(digest: string): Promise<number> {
  const { rows } = await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM imagestorage WHERE content_checksum = $1`, [digest]);
  return rows[0]!.n;
}

describe('an upload killed between moving its bytes and committing its rows', { timeout: 240_000 }, () => {
  it('leaves no object behind once its lease has passed: the sweep removes it and the audit is clean', async () => {
    const { child, exited } = startFrontEnd();
    const base = `http://127.0.0.1:${PORT}`;
    try {
      await waitFor('the front end', async () => ((await fetch(`${base}/v2/`)).status === 401 ? true : undefined));
      const auth = await fetch(`${base}/v2/auth?service=127.0.0.1:${PORT}&scope=repository:alice/leak:pull,push`, { headers: { authorization: basicAuth('alice', 'password1') } });
      const { token } = await auth.json() as { token: string };
      const blob = randomBytes(4096);
      const digest = sha256(blob);
      const objectPath = path.join(storagePath, 'sha256', digest.slice(7, 9), digest.slice(7));

      await holdingTransaction(database.pool, async (client) => {
        // The push's INSERT of this digest waits for this uncommitted row.
        await client.query(`INSERT INTO imagestorage (content_checksum, image_size) VALUES ($1, $2)`, [digest, blob.length]);
        const push = fetch(`${base}/v2/alice/leak/blobs/uploads/?digest=${digest}`, {
          method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: blob,
        }).catch(() => undefined);
        await waitFor('the object at its content address', async () => ((await fs.stat(objectPath)).size === blob.length ? true : undefined));
        expect(await blobRows(digest)).toBe(0);
        child.kill('SIGKILL');
        await exited;
        await push;
      });

      // The crash left the object and no row: exactly the leak, now covered by the push's intent.
      expect((await fs.stat(objectPath)).size).toBe(blob.length);
      expect(await blobRows(digest)).toBe(0);
      const before = await auditStorage(database.pool, storage, ['default']);
      expect(before.locations[0]!.orphanObjects).toEqual([]);
      expect(before.uploadIntents).toBe(1);

      // Before the lease ends the sweep leaves it (the push might still be committing).
      const { rows } = await database.pool.query<{ resolve_after: Date }>(`SELECT resolve_after FROM uploadcommitintent`);
      const resolveAfterMs = rows[0]!.resolve_after.getTime();
      const early = await runSweep(database.pool, storage, { tick: 0 });
      if (Date.now() < resolveAfterMs - 1000) expect(early.intents.deleted).toBe(0); // a very slow machine may already be past it
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, resolveAfterMs - Date.now()) + 500));
      const swept = await runSweep(database.pool, storage, { tick: 0 });
      expect(early.intents.deleted + swept.intents.deleted).toBe(1);
      expect(early.intents.bytes + swept.intents.bytes).toBe(blob.length);
      await expect(fs.stat(objectPath)).rejects.toThrow(/ENOENT/);
      const after = await auditStorage(database.pool, storage, ['default']);
      expect(after).toMatchObject({ ok: true, uploadIntents: 0 });
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});
