/**
 * The worker as operators run it, in child processes on real Redis and Postgres: the scheduler
 * tick finds due mirrors; a worker SIGKILLed mid-sync leaves a lease that lapses, and another
 * process finishes the mirror (no stuck SYNCING); two processes and ten due mirrors sync each
 * repository exactly once, never two syncs of one repository at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RepoMirrorStatus } from '../../shared/db/mirrors.ts';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { fakeImage, startFakeUpstream, type FakeUpstream } from '../../test/helpers/fake-upstream.ts';
import { REDIS_URL, uniquePrefix } from '../../test/helpers/redis.ts';
import type { TestRegistry } from '../../test/helpers/registry.ts';
import { createMirrorRepo, localTags, mirrorOf, SECRET_KEY, startMirrorRegistry } from './test-support.ts';

const CHILD = fileURLToPath(new URL('./test-child.ts', import.meta.url));
let reg: TestRegistry;
let fake: FakeUpstream;
const children: ChildProcess[] = [];

beforeAll(async () => {
  [reg, fake] = await Promise.all([startMirrorRegistry(), startFakeUpstream('lib/app')]);
  fake.tags.set('good', fakeImage('process-good'));
  fake.tags.set('other', fakeImage('process-other'));
}, 120_000);
afterEach(async () => {
  await Promise.all(children.splice(0).map((child) => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  })));
});
afterAll(async () => Promise.all([reg?.close(), fake?.stop()]));

function startWorker(prefix: string): Promise<ChildProcess> {
  const config = {
    ...Object.fromEntries(Object.entries(reg.deps.config.quay).filter(([key]) => key.startsWith('DISTRIBUTED_STORAGE') || key === 'SERVER_HOSTNAME')),
    FEATURE_REPO_MIRROR: true, DATABASE_SECRET_KEY: SECRET_KEY, SSRF_ALLOWED_HOSTS: ['127.0.0.1'], REPO_MIRROR_INTERVAL: 1,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, QF_CONFIG: JSON.stringify(config), QF_DATABASE_URL: reg.database.url, QF_REDIS_URL: REDIS_URL, QF_PREFIX: prefix, QF_LEASE_MS: '2000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => { if (chunk.toString().includes('ready')) resolve(child); });
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${output}`)));
  });
}

describe('repomirrorworker processes', () => {
  it('a worker SIGKILLed mid-sync leaves no stuck SYNCING: another process finishes the mirror', async () => {
    const id = await createMirrorRepo(reg, 'killed', { external: `${fake.authority}/lib/app`, patterns: ['good', 'other'] });
    const prefix = uniquePrefix('mirror-kill');
    const hold = fake.holdNext('manifests/other');
    const first = await startWorker(prefix);
    await hold.reached;
    expect((await mirrorOf(reg, id)).sync_status).toBe(RepoMirrorStatus.SYNCING);
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    hold.release();
    await startWorker(prefix);
    // From the second process being ready: its tick, the lapsed 2 s lease, the sync.
    const readyAt = Date.now();
    const mirror = await waitFor(async () => {
      const row = await mirrorOf(reg, id);
      return row.sync_status === RepoMirrorStatus.SUCCESS ? row : undefined;
    }, 60_000, 200);
    expect(Date.now() - readyAt).toBeLessThan(30_000);
    expect(mirror.sync_expiration_date).toBeNull();
    expect(Object.keys(await localTags(reg, id))).toEqual(['good', 'other']);
  }, 150_000);

  it('two processes, ten due mirrors: each synced exactly once', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 10; i++) ids.push(await createMirrorRepo(reg, `fleet${i}`, { external: `${fake.authority}/lib/app`, patterns: ['good'] }));
    const prefix = uniquePrefix('mirror-fleet');
    await Promise.all([startWorker(prefix), startWorker(prefix)]);
    await waitFor(async () => {
      const { rows } = await reg.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM repomirrorconfig WHERE repository_id = ANY($1) AND sync_status = ${RepoMirrorStatus.SUCCESS}`, [ids]);
      return rows[0]!.n === 10 ? true : undefined;
    }, 45_000, 200);
    const { rows } = await reg.db.query<{ repository_id: number; n: number }>(
      `SELECT repository_id, count(*)::int AS n FROM logentry WHERE repository_id = ANY($1) AND kind = 'repo_mirror_sync_started' GROUP BY repository_id`, [ids]);
    expect(rows).toHaveLength(10);
    expect(rows.every((r) => r.n === 1)).toBe(true);
  }, 150_000);
});
