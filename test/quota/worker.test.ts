/**
 * The quota workers on real BullMQ and Postgres: the backfill tick finds namespaces without totals
 * and computes them after QUOTA_TOTAL_DELAY_SECONDS (Quay's #13 discovery rules), a backfill
 * SIGKILLed mid-way finishes on the next run with nothing stuck "running", the registry total is
 * computed on request, and the gates keep the workers from starting.
 */
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { quotaregistrysize } from '../../queues/quotaregistrysize.ts';
import { quotatotal } from '../../queues/quotatotal.ts';
import type { Config } from '../../shared/config/index.ts';
import { auditQuotaTotals } from '../../shared/db/quota/audit.ts';
import { readRegistrySize, requestRegistrySize } from '../../shared/db/quota/registry-size.ts';
import { createProducer, type Producer } from '../../shared/runtime/producer.ts';
import { runWorker, type RunningWorker } from '../../shared/runtime/run-worker.ts';
import { captureLogger, waitFor } from '../../shared/runtime/test-support/index.ts';
import { quotaregistrysizeworker, quotatotalworker } from '../../workers/quotatotalworker/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { createBlob, createNamespace, createRepo, namespaceTotal, pushManifest, quotaConfig } from './fixtures.ts';

let database: TestDatabase;
let producer: Producer;
let prefix: string;
let running: RunningWorker[] = [];

beforeAll(async () => {
  database = await createTestDatabase('quotaworker');
  prefix = uniquePrefix('quotaworker');
  producer = createProducer({ url: REDIS_URL, prefix });
});
afterEach(async () => {
  await Promise.all(running.map((w) => w.stop(2000)));
  running = [];
  await producer.queue(quotatotal.name).obliterate({ force: true });
});
afterAll(async () => {
  await producer.queue(quotaregistrysize.name).obliterate({ force: true });
  await producer.close();
  await database?.drop();
});

async function start(definition: typeof quotatotalworker | typeof quotaregistrysizeworker, config: Config) {
  // Short leases: a job the SIGKILLed child held is redelivered within a second, not thirty.
  const worker = await runWorker(definition, {
    config, services: { db: database.pool, config }, redis: { url: REDIS_URL, prefix }, log: captureLogger().log,
    lease: { lockDurationMs: 1000, stalledIntervalMs: 500 },
  });
  if (!worker.disabled) running.push(worker);
  return worker;
}

const off = quotaConfig({ FEATURE_QUOTA_MANAGEMENT: false });
let seq = 0;

/** A namespace with `repositories` repositories of `manifests` manifests each, pushed with quota off (no totals). */
async function untotalled(repositories = 1, manifests = 1): Promise<number> {
  const ns = await createNamespace(database.pool, `w${++seq}`);
  const shared = await createBlob(database.pool, 1000);
  for (let r = 0; r < repositories; r++) {
    const repositoryId = await createRepo(database.pool, ns, `r${r}`);
    for (let m = 0; m < manifests; m++) await pushManifest(database.pool, off, { namespaceId: ns, repositoryId }, [shared, await createBlob(database.pool, 10 + m)]);
  }
  return ns;
}

describe('backfill tick', () => {
  it('computes namespaces with manifests and no totals, never empty ones (they start on their first push)', async () => {
    const withManifests = await untotalled(2, 2);
    const empty = await createNamespace(database.pool, `empty${++seq}`);
    await start(quotatotalworker, quotaConfig({ QUOTA_BACKFILL_POLL_PERIOD: 1 }));
    await waitFor(async () => (await namespaceTotal(database.pool, withManifests))?.complete, 20_000);
    // One blob shared by every manifest, and two of its own per repository.
    expect((await namespaceTotal(database.pool, withManifests))!.size).toBe(1000 + 2 * (10 + 11));
    expect(await namespaceTotal(database.pool, empty)).toBeUndefined();
    expect(await auditQuotaTotals(database.pool)).toEqual([]);
  });

  it('waits QUOTA_TOTAL_DELAY_SECONDS after first seeing a namespace ("Backfill Queued" meanwhile)', async () => {
    const ns = await untotalled();
    await start(quotatotalworker, quotaConfig({ QUOTA_BACKFILL_POLL_PERIOD: 1, QUOTA_TOTAL_DELAY_SECONDS: 3 }));
    await waitFor(async () => (await namespaceTotal(database.pool, ns)) !== undefined, 10_000);
    const seenAt = Date.now();
    expect(await namespaceTotal(database.pool, ns)).toEqual({ size: 0, complete: false });
    await waitFor(async () => (await namespaceTotal(database.pool, ns))?.complete, 20_000);
    expect(Date.now() - seenAt).toBeGreaterThanOrEqual(1500);
  });

  it('recomputes totals a push with quota management off marked stale', async () => {
    const ns = await createNamespace(database.pool, `stale${++seq}`);
    const repositoryId = await createRepo(database.pool, ns, 'r');
    await pushManifest(database.pool, quotaConfig(), { namespaceId: ns, repositoryId }, [await createBlob(database.pool, 100)]);
    await pushManifest(database.pool, off, { namespaceId: ns, repositoryId }, [await createBlob(database.pool, 50)]);
    expect(await namespaceTotal(database.pool, ns)).toEqual({ size: 0, complete: false });
    await start(quotatotalworker, quotaConfig({ QUOTA_BACKFILL_POLL_PERIOD: 1 }));
    await waitFor(async () => (await namespaceTotal(database.pool, ns))?.complete, 20_000);
    expect((await namespaceTotal(database.pool, ns))!.size).toBe(150);
  });

  it('does not start without FEATURE_QUOTA_MANAGEMENT or QUOTA_BACKFILL', async () => {
    expect(await start(quotatotalworker, off)).toMatchObject({ disabled: true });
    expect(await start(quotatotalworker, quotaConfig({ QUOTA_BACKFILL: false }))).toMatchObject({ disabled: true });
    expect(await start(quotaregistrysizeworker, off)).toMatchObject({ disabled: true });
  });
});

describe('backfill SIGKILLed mid-way', () => {
  it('leaves every namespace waiting or complete, never half-done, and the next run finishes exactly', async () => {
    const namespaces: number[] = [];
    for (let i = 0; i < 40; i++) namespaces.push(await untotalled(3, 2));
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/quota/backfill-child.ts', database.url, prefix], { stdio: ['ignore', 'pipe', 'inherit'] });
    let computed = 0;
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    child.stdout.on('data', (chunk: Buffer) => {
      computed += (chunk.toString().match(/namespace quota totals computed/g) ?? []).length;
      if (computed >= 10 && child.exitCode === null) child.kill('SIGKILL');
    });
    await exited;
    const states = await database.pool.query<{ complete: boolean; started: boolean; n: number }>(
      `SELECT backfill_complete AS complete, backfill_start_ms IS NOT NULL AS started, count(*)::int AS n FROM quotanamespacesize
       WHERE namespace_user_id = ANY($1::bigint[]) GROUP BY 1, 2`, [namespaces]);
    // Nothing is left "running" (started but not complete); some namespaces are still to do.
    expect(states.rows.filter((r) => r.started && !r.complete)).toEqual([]);
    const done = states.rows.find((r) => r.complete)?.n ?? 0;
    expect(done).toBeGreaterThanOrEqual(10);
    expect(done).toBeLessThan(namespaces.length);
    expect(await auditQuotaTotals(database.pool)).toEqual([]);

    await start(quotatotalworker, quotaConfig({ QUOTA_BACKFILL_POLL_PERIOD: 1, QUOTA_BACKFILL_BATCH_SIZE: 1000 }));
    await waitFor(async () => {
      const { rows } = await database.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM quotanamespacesize WHERE backfill_complete AND namespace_user_id = ANY($1::bigint[])`, [namespaces]);
      return rows[0]!.n === namespaces.length;
    }, 30_000);
    expect(await auditQuotaTotals(database.pool)).toEqual([]);
  }, 90_000);
});

describe('registry total', () => {
  it('is computed once on request: SUM(image_size) over every blob row, with the time it ran', async () => {
    expect(await readRegistrySize(database.pool)).toEqual({ size_bytes: 0, last_ran: null, queued: false, running: false });
    expect(await requestRegistrySize(database.pool)).toEqual({ alreadyQueued: false });
    expect(await requestRegistrySize(database.pool)).toEqual({ alreadyQueued: true });
    const before = Date.now();
    await start(quotaregistrysizeworker, quotaConfig()); // its first poll may run the request already
    // What the outbox relay does with the row the request wrote.
    await producer.enqueue(quotaregistrysize, { v: 1 });
    await waitFor(async () => !(await readRegistrySize(database.pool)).queued, 15_000);
    const { rows } = await database.pool.query<{ total: number }>(`SELECT COALESCE(sum(image_size), 0)::bigint AS total FROM imagestorage`);
    const report = await readRegistrySize(database.pool);
    expect(report).toMatchObject({ size_bytes: rows[0]!.total, queued: false, running: false });
    expect(report.last_ran).toBeGreaterThanOrEqual(before);
    expect(await requestRegistrySize(database.pool)).toEqual({ alreadyQueued: false });
  });
});
