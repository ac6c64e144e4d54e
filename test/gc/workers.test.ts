/**
 * The three GC workers on real BullMQ: event jobs collect, a busy repository defers without
 * spending an attempt, the sweep finds what no event announced, purges finish and count, and a
 * feature flag set to false keeps a worker from starting.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { garbagecollection } from '../../queues/garbagecollection.ts';
import { namespacegc } from '../../queues/namespacegc.ts';
import { repositorygc } from '../../queues/repositorygc.ts';
import { parseConfig, type Config } from '../../shared/config/index.ts';
import { withGcLock } from '../../shared/db/gc/locks.ts';
import { registry } from '../../shared/metrics/index.ts';
import { createProducer, type Producer } from '../../shared/runtime/producer.ts';
import { runWorker, type RunningWorker } from '../../shared/runtime/run-worker.ts';
import { captureLogger, waitFor } from '../../shared/runtime/test-support/index.ts';
import type { VersionedPayload } from '../../queues/contract.ts';
import type { WorkerDefinition, WorkerServices } from '../../shared/runtime/worker.ts';
import { gcworker } from '../../workers/gcworker/index.ts';
import { namespacegcworker } from '../../workers/namespacegcworker/index.ts';
import { repositorygcworker } from '../../workers/repositorygcworker/index.ts';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { blob, count, createGcFixture, manifest, namespace, objectExists, repository, tag, type GcFixture } from './fixtures.ts';

let f: GcFixture;
let producer: Producer;
let prefix: string;
let running: RunningWorker[] = [];
beforeAll(async () => {
  f = await createGcFixture('gcworkers');
  prefix = uniquePrefix('gcworkers');
  producer = createProducer({ url: REDIS_URL, prefix });
});
afterEach(async () => {
  await Promise.all(running.map((w) => w.stop(2000)));
  running = [];
});
afterAll(async () => {
  for (const q of [garbagecollection, repositorygc, namespacegc]) await producer.queue(q.name).obliterate({ force: true });
  await producer.close();
  await f.close();
});

async function start<P extends VersionedPayload, S extends WorkerServices>(definition: WorkerDefinition<P, S>, config: Config = parseConfig({})) {
  const services = { db: f.pool, storage: f.storage, config } as unknown as S;
  const worker = await runWorker(definition, { config, services, redis: { url: REDIS_URL, prefix }, log: captureLogger().log });
  if (!worker.disabled) running.push(worker);
  return worker;
}

async function jobState(queue: string, id: string): Promise<string | undefined> {
  return (await producer.queue(queue).getJob(id))?.getState();
}

async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const values = (await registry.getSingleMetric(name)!.get()).values;
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

let seq = 0;
async function garbageRepository() {
  const ns = await namespace(f, `w${++seq}`, 0);
  const id = await repository(f, ns, 'r');
  const b = await blob(f);
  await tag(f, id, 'x', await manifest(f, id, { blobs: [b] }), { endMs: Date.now() - 1000 });
  return { ns, id, b };
}

describe('gcworker', () => {
  it('collects a repository when its event job runs, and counts it', async () => {
    await start(gcworker);
    const { id, b } = await garbageRepository();
    const iterations = await metricValue('quay_gc_iterations_total');
    const blobsDeleted = await metricValue('quay_gc_storage_blobs_deleted_total');
    const jobId = await producer.enqueue(garbagecollection, { v: 1, reason: 'tag_expired', repositoryId: id, dueAtS: 1 });
    await waitFor(async () => (await jobState(garbagecollection.name, jobId)) === 'completed', 15_000);
    expect(await objectExists(f, b.digest)).toBe(false);
    expect(await metricValue('quay_gc_iterations_total')).toBe(iterations + 1);
    expect(await metricValue('quay_gc_storage_blobs_deleted_total')).toBe(blobsDeleted + 1);
    expect(await metricValue('quay_gc_table_rows_deleted_total', { table: 'Manifest' })).toBeGreaterThanOrEqual(1);
  });

  it('defers, without spending an attempt, while another job holds the repository', async () => {
    await start(gcworker);
    const { id, b } = await garbageRepository();
    let jobId = '';
    await withGcLock(f.pool, { repositoryId: id }, async () => {
      jobId = await producer.enqueue(garbagecollection, { v: 1, reason: 'manual', repositoryId: id, dueAtS: 2 });
      await waitFor(async () => (await jobState(garbagecollection.name, jobId)) === 'delayed', 15_000);
      expect((await producer.queue(garbagecollection.name).getJob(jobId))!.attemptsMade).toBe(0);
      expect(await objectExists(f, b.digest)).toBe(true);
    });
    await waitFor(async () => (await jobState(garbagecollection.name, jobId)) === 'completed', 15_000);
    expect(await objectExists(f, b.digest)).toBe(false);
  });

  it('sweeps: finds repositories no event announced and enqueues their collection', async () => {
    await start(gcworker);
    const { id, b } = await garbageRepository();
    await producer.queue(garbagecollection.name).add('sweep', { v: 1, reason: 'sweep', dueAtS: 0 }, { jobId: `sweep-${id}` });
    await waitFor(async () => !(await objectExists(f, b.digest)), 20_000);
    expect(await count(f, 'manifest', 'repository_id = $1', [id])).toBe(0);
  });

  it('sweeps: enqueues no second job for a repository whose own job is queued and due, but does when that job is due only next week', async () => {
    await start(gcworker);
    const jobsOf = async (id: number) => (await producer.queue(garbagecollection.name).getRanges(['waiting', 'prioritized', 'delayed', 'active', 'completed'], 0, -1))
      .filter((jobId) => jobId.startsWith(`garbagecollection/${id}/`));
    const soon = await garbageRepository();
    const soonDueS = Math.ceil(Date.now() / 1000) + 4;
    const soonJob = await producer.enqueue(garbagecollection, { v: 1, reason: 'tag_expired', repositoryId: soon.id, dueAtS: soonDueS }, { runAt: new Date(soonDueS * 1000) });
    const late = await garbageRepository();
    const lateDueS = Math.ceil(Date.now() / 1000) + 7 * 86_400;
    await producer.enqueue(garbagecollection, { v: 1, reason: 'tag_expired', repositoryId: late.id, dueAtS: lateDueS }, { runAt: new Date(lateDueS * 1000) });
    await producer.queue(garbagecollection.name).add('sweep', { v: 1, reason: 'sweep', dueAtS: 0 }, { jobId: `sweep-covered-${soon.id}` });
    await waitFor(async () => (await jobState(garbagecollection.name, `sweep-covered-${soon.id}`)) === 'completed', 20_000);
    expect(await jobsOf(soon.id)).toEqual([soonJob]);
    // The job due next week covers nothing due now: the sweep's own job collects the repository.
    await waitFor(async () => !(await objectExists(f, late.b.digest)), 20_000);
    expect(await jobsOf(late.id)).toHaveLength(2);
    await waitFor(async () => (await jobState(garbagecollection.name, soonJob)) === 'completed', 20_000);
    expect(await objectExists(f, soon.b.digest)).toBe(false);
  });

  it('reports pending storage deletions and reclaimable bytes (time machine included) as gauges', async () => {
    await start(gcworker);
    const ns = await namespace(f, `g${++seq}`, 86_400);
    const id = await repository(f, ns, 'r');
    const b = await blob(f);
    await tag(f, id, 'x', await manifest(f, id, { blobs: [b] }), { endMs: Date.now() - 1000 }); // inside the window
    const jobId = await producer.enqueue(garbagecollection, { v: 1, reason: 'manual', repositoryId: id, dueAtS: 3 });
    await waitFor(async () => (await jobState(garbagecollection.name, jobId)) === 'completed', 15_000);
    expect(await objectExists(f, b.digest)).toBe(true);
    expect(await metricValue('quayfleet_gc_reclaimable_bytes')).toBeGreaterThanOrEqual(b.size);
    await f.pool.query(`INSERT INTO pendingstoragedeletion (location_id, content_checksum, object_key) VALUES ($1, 'sha256:x', 'sha256/xx/gauge')`, [f.locationIds.get('local_us')]);
    expect(await metricValue('quayfleet_gc_pending_storage_deletions')).toBeGreaterThanOrEqual(1);
    await f.pool.query(`DELETE FROM pendingstoragedeletion WHERE object_key = 'sha256/xx/gauge'`);
  });

  it('does not start when FEATURE_GARBAGE_COLLECTION is false', async () => {
    const worker = await start(gcworker, parseConfig({ FEATURE_GARBAGE_COLLECTION: false }));
    expect(worker).toMatchObject({ disabled: true });
  });
});

describe('purge workers', () => {
  it('repositorygcworker purges a marked repository and counts it', async () => {
    await start(repositorygcworker);
    const { id, b } = await garbageRepository();
    await f.pool.query(`UPDATE repository SET state = 3 WHERE id = $1`, [id]);
    const { rows } = await f.pool.query<{ id: number }>(`INSERT INTO deletedrepository (repository_id, original_name) VALUES ($1, 'r') RETURNING id`, [id]);
    const purged = await metricValue('quay_gc_repos_purged_total');
    const jobId = await producer.enqueue(repositorygc, { v: 1, repositoryId: id, markerId: rows[0]!.id, originalName: 'r', namespace: 'w' });
    await waitFor(async () => (await jobState(repositorygc.name, jobId)) === 'completed', 15_000);
    expect(await count(f, 'repository', 'id = $1', [id])).toBe(0);
    expect(await objectExists(f, b.digest)).toBe(false);
    expect(await metricValue('quay_gc_repos_purged_total')).toBe(purged + 1);
  });

  it('namespacegcworker purges a marked namespace and counts it and its repositories', async () => {
    await start(namespacegcworker);
    const { ns } = await garbageRepository();
    await repository(f, ns, 'second');
    const { rows } = await f.pool.query<{ id: number }>(
      `INSERT INTO deletednamespace (namespace_id, original_username) VALUES ($1, 'gone') RETURNING id`, [ns]);
    const [repos, namespaces] = [await metricValue('quay_gc_repos_purged_total'), await metricValue('quay_gc_namespaces_purged_total')];
    const jobId = await producer.enqueue(namespacegc, { v: 1, namespaceId: ns, markerId: rows[0]!.id, originalUsername: 'gone' });
    await waitFor(async () => (await jobState(namespacegc.name, jobId)) === 'completed', 15_000);
    expect(await count(f, 'namespace', 'id = $1', [ns])).toBe(0);
    expect(await metricValue('quay_gc_repos_purged_total')).toBe(repos + 2);
    expect(await metricValue('quay_gc_namespaces_purged_total')).toBe(namespaces + 1);
  });

  it('do not start when their flags are false', async () => {
    expect(await start(repositorygcworker, parseConfig({ FEATURE_REPOSITORY_GARBAGE_COLLECTION: false }))).toMatchObject({ disabled: true });
    expect(await start(namespacegcworker, parseConfig({ FEATURE_NAMESPACE_GARBAGE_COLLECTION: false }))).toMatchObject({ disabled: true });
  });
});
