/**
 * The securityscanningnotificationworker against a Clair notifier peer (test/servers/clair-notifier.ts,
 * a real HTTP server speaking Clair's notifier API; there is no Clair here), real Postgres and
 * Redis: Quay's acceptance cases, paging with checkpoints, PSK-signed requests, no N² fan-out,
 * a SIGKILL mid-page, and the fan-out's cost on 10k manifests across 1k repositories.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { secscanv4 } from '../../queues/secscanv4.ts';
import { notification } from '../../queues/notification.ts';
import { parseConfig, type Config } from '../../shared/config/index.ts';
import { createProducer, type Producer } from '../../shared/runtime/producer.ts';
import { runWorker, type RunningWorker } from '../../shared/runtime/run-worker.ts';
import { captureLogger, waitFor } from '../../shared/runtime/test-support/index.ts';
import { startClairNotifier, type ClairEntry, type ClairNotifier } from '../../test/servers/clair-notifier.ts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { REDIS_URL, uniquePrefix } from '../../test/helpers/redis.ts';
import { killWorkerChild, spawnWorkerChild } from '../../test/helpers/worker-child.ts';
import { securityscanningnotificationworker } from './index.ts';

const PSK = randomBytes(32).toString('base64');
let db: TestDatabase;
let clair: ClairNotifier;
let producer: Producer;
let prefix: string;
let config: Config;
let rawConfig: Record<string, unknown>;
let running: RunningWorker[] = [];

beforeAll(async () => {
  db = await createTestDatabase('secscanworker');
  clair = await startClairNotifier({ psk: PSK });
  prefix = uniquePrefix('secscanworker');
  producer = createProducer({ url: REDIS_URL, prefix });
  rawConfig = {
    FEATURE_SECURITY_SCANNER: true, FEATURE_SECURITY_NOTIFICATIONS: true, SECURITY_SCANNER_V4_ENDPOINT: clair.url,
    SECURITY_SCANNER_V4_PSK: PSK, SERVER_HOSTNAME: 'quay.example',
  };
  config = parseConfig(rawConfig);
});
beforeEach(async () => { await db.pool.query('DELETE FROM outbox'); });
afterEach(async () => {
  await Promise.all(running.map((w) => w.stop(2000)));
  running = [];
});
afterAll(async () => {
  await producer.queue(secscanv4.name).obliterate({ force: true });
  await producer.close();
  await clair.close();
  await db.drop();
});

async function start(): Promise<void> {
  const worker = await runWorker(securityscanningnotificationworker, {
    config, services: { db: db.pool, config }, redis: { url: REDIS_URL, prefix }, log: captureLogger().log,
    lease: { lockDurationMs: 1000, stalledIntervalMs: 500 },
  });
  if (!worker.disabled) running.push(worker);
}

let seq = 0;
const digestOf = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

/** A namespace, repository and manifest tagged `tags`; returns the manifest digest and repository id. */
async function image(ns: string, repo: string, tags: string[], digest = digestOf(`${ns}/${repo}/${++seq}`)): Promise<{ digest: string; repositoryId: number }> {
  const { rows: [n] } = await db.pool.query<{ id: number }>(
    `INSERT INTO namespace (username) VALUES ($1) ON CONFLICT (username) DO UPDATE SET username = EXCLUDED.username RETURNING id`, [ns]);
  const { rows: [r] } = await db.pool.query<{ id: number }>(
    `INSERT INTO repository (namespace_user_id, name) VALUES ($1, $2) ON CONFLICT (namespace_user_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id`, [n!.id, repo]);
  const { rows: [m] } = await db.pool.query<{ id: number }>(
    `INSERT INTO manifest (repository_id, digest, media_type, manifest_bytes) VALUES ($1, $2, 'application/vnd.oci.image.manifest.v1+json', '\\x7b7d') RETURNING id`, [r!.id, digest]);
  for (const tag of tags) {
    await db.pool.query(`INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms) VALUES ($1, $2, $3, 0)`, [tag, r!.id, m!.id]);
  }
  return { digest, repositoryId: r!.id };
}

async function watch(repositoryId: number, eventConfig: Record<string, unknown>): Promise<string> {
  const { rows } = await db.pool.query<{ uuid: string }>(
    `INSERT INTO repositorynotification (repository_id, event, method, config_json, event_config_json)
     VALUES ($1, 'vulnerability_found', 'webhook', '{"url":"http://example.com"}', $2) RETURNING uuid::text`, [repositoryId, eventConfig]);
  return rows[0]!.uuid;
}

function entry(manifest: string, severity: ClairEntry['vulnerability']['normalized_severity'], name = 'BarBaz', reason: ClairEntry['reason'] = 'added'): ClairEntry {
  return {
    id: `${++seq}`, manifest, reason,
    vulnerability: { name, description: 'Some description', links: 'http://cve/BarBaz', fixed_in_version: '1.2', normalized_severity: severity, package: { name: 'openssl' } },
  };
}

async function runJob(notificationId: string, timeoutMs = 20_000): Promise<string> {
  const jobId = await producer.enqueue(secscanv4, { v: 1, notificationId });
  return waitFor(async () => {
    const job = await producer.queue(secscanv4.name).getJob(jobId);
    const state = await job?.getState();
    return state === 'completed' || state === 'failed' || (state === 'delayed' && (job?.attemptsMade ?? 0) > 0) ? state : undefined;
  }, timeoutMs);
}

async function notificationJobs(): Promise<{ job_id: string; payload: { notificationUuid: string; eventData: Record<string, unknown> } }[]> {
  const { rows } = await db.pool.query(`SELECT job_id, payload FROM outbox WHERE queue_name = $1 ORDER BY id`, [notification.name]);
  return rows;
}

describe('securityscanningnotificationworker', () => {
  it('turns a Clair notification into vulnerability_found for the tagged repository (Quay\'s case), then deletes it at Clair', async () => {
    await start();
    const { digest, repositoryId } = await image('devtable', 'simple', ['latest']);
    const uuid = await watch(repositoryId, { vulnerability: { priority: 'Low' } });
    clair.add('somenotificationid', [entry(digest, 'High'), entry(digest, 'Critical', 'Gone', 'removed')]);
    expect(await runJob('somenotificationid')).toBe('completed');
    const jobs = await notificationJobs();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.payload).toMatchObject({
      notificationUuid: uuid, event: 'vulnerability_found',
      eventData: {
        repository: 'devtable/simple', namespace: 'devtable', name: 'simple', tags: ['latest'],
        vulnerability: { id: 'BarBaz', description: 'Some description', link: 'http://cve/BarBaz', priority: 'High', has_fix: true },
      },
    });
    expect(clair.deleted.has('somenotificationid')).toBe(true);
    expect(clair.requests.filter((r) => r.id === 'somenotificationid').every((r) => r.status !== 401)).toBe(true);
  });

  it.each([
    ['wrong_id', async () => 'nosuchnotification'],
    ['no_event_registered', async () => { const { digest } = await image('org1', 'plain', ['latest']); clair.add('n-noevent', [entry(digest, 'High')]); return 'n-noevent'; }],
    ['severity_too_low', async () => { const { digest, repositoryId } = await image('org2', 'strict', ['latest']); await watch(repositoryId, { vulnerability: { priority: 'Critical' } }); clair.add('n-low', [entry(digest, 'High')]); return 'n-low'; }],
    ['level_too_low', async () => { const { digest, repositoryId } = await image('org5', 'legacy', ['latest']); await watch(repositoryId, { level: '0' }); clair.add('n-level', [entry(digest, 'Medium')]); return 'n-level'; }],
    ['no_matching_manifest', async () => { const { repositoryId } = await image('org3', 'other', ['latest']); await watch(repositoryId, {}); clair.add('n-nomatch', [entry(digestOf('nothing'), 'Critical')]); return 'n-nomatch'; }],
    ['untagged_manifest', async () => { const { digest, repositoryId } = await image('org4', 'untagged', []); await watch(repositoryId, {}); clair.add('n-untagged', [entry(digest, 'Critical')]); return 'n-untagged'; }],
  ])('raises nothing for %s', async (_case, setup) => {
    await start();
    const id = await setup();
    expect(await runJob(id)).toBe('completed');
    expect(await notificationJobs()).toEqual([]);
  });

  it('raises one job per notification whose minimum the vulnerability meets (no N² fan-out), and one per repository sharing the digest', async () => {
    await start();
    const shared = digestOf('shared-base');
    const a = await image('team', 'a', ['v1', 'v2'], shared);
    const b = await image('team', 'b', ['prod'], shared);
    const uuids = [await watch(a.repositoryId, {}), await watch(a.repositoryId, { level: 5 }), await watch(a.repositoryId, { vulnerability: { priority: 'Medium' } })];
    // Wants Critical only: a Medium vulnerability raises no job for it.
    await watch(a.repositoryId, { vulnerability: { priority: 'Critical' } });
    const bUuid = await watch(b.repositoryId, {});
    // The same vulnerability in two packages (SCAN-7) is one event.
    clair.add('n-fan', [entry(shared, 'Medium', 'CVE-9'), entry(shared, 'Medium', 'CVE-9')]);
    expect(await runJob('n-fan')).toBe('completed');
    const jobs = await notificationJobs();
    expect(jobs.map((j) => j.payload.notificationUuid).sort()).toEqual([...uuids, bUuid].sort());
    expect(jobs.find((j) => j.payload.notificationUuid === bUuid)!.payload.eventData.tags).toEqual(['prod']);
    expect(jobs.find((j) => j.payload.notificationUuid === uuids[0])!.payload.eventData.tags).toEqual(['v1', 'v2']);
  });

  it('pages through a large notification, and retries when Clair fails', async () => {
    await start();
    const images: { digest: string; repositoryId: number }[] = [];
    for (let i = 0; i < 3; i++) images.push(await image('paged', `r${i}`, ['latest']));
    for (const img of images) await watch(img.repositoryId, {});
    const entries = Array.from({ length: 1200 }, (_, i) => entry(images[i % 3]!.digest, 'High', `CVE-${i}`));
    clair.add('n-paged', entries);
    clair.failNext(1);
    expect(await runJob('n-paged')).toBe('delayed');
    expect(await notificationJobs()).toEqual([]);
    // The retry waits 300 s; promote it now.
    await (await producer.queue(secscanv4.name).getJob('secscanv4/with_id/n-paged'))!.promote();
    await waitFor(async () => (await (await producer.queue(secscanv4.name).getJob('secscanv4/with_id/n-paged'))!.getState()) === 'completed', 20_000);
    const pages = clair.requests.filter((r) => r.id === 'n-paged' && r.method === 'GET' && r.status === 200);
    expect(pages.map((r) => [r.pageSize, r.next === null])).toEqual([[500, true], [500, false], [500, false]]);
    expect(await notificationJobs()).toHaveLength(1200);
    expect(clair.deleted.has('n-paged')).toBe(true);
  }, 40_000);

  it('resumes at its checkpoint after a SIGKILL mid-page, raising every event exactly once', async () => {
    const img = await image('killed', 'app', ['latest']);
    await watch(img.repositoryId, {});
    clair.add('n-kill', Array.from({ length: 1500 }, (_, i) => entry(img.digest, 'High', `CVE-K${i}`)));
    // The second page is held: the worker has committed page one and checkpointed when it dies.
    clair.holdWhen((r) => r.id === 'n-kill' && r.next !== null);
    const child = await spawnWorkerChild({ worker: 'securityscanningnotificationworker', databaseUrl: db.url, redisUrl: REDIS_URL, prefix, config: rawConfig });
    try {
      await producer.enqueue(secscanv4, { v: 1, notificationId: 'n-kill' });
      await waitFor(async () => ((await notificationJobs()).length === 500 ? true : undefined), 15_000);
      await waitFor(async () => {
        const job = await producer.queue(secscanv4.name).getJob('secscanv4/with_id/n-kill');
        return (job?.data as { _checkpoint?: { pages: number } })._checkpoint?.pages === 1 ? true : undefined;
      }, 15_000);
      await killWorkerChild(child);
      const beforeResume = clair.requests.length;
      clair.holdWhen(undefined);
      clair.release();

      await start();
      await waitFor(async () => (await (await producer.queue(secscanv4.name).getJob('secscanv4/with_id/n-kill'))!.getState()) === 'completed', 20_000);
      // The resumed worker starts at the checkpointed page two, never at page one.
      const resumed = clair.requests.slice(beforeResume).filter((r) => r.id === 'n-kill' && r.method === 'GET');
      expect(resumed.length).toBeGreaterThan(0);
      expect(resumed.filter((r) => r.next === null)).toEqual([]);
      const jobs = await notificationJobs();
      expect(jobs).toHaveLength(1500);
      expect(new Set(jobs.map((j) => j.job_id)).size).toBe(1500);
    } finally {
      await killWorkerChild(child);
    }
  }, 120_000);

  it('fans 10k affected manifests across 1k repositories out in time linear in the manifests', async () => {
    await start();
    const timings: Record<number, number> = {};
    for (const [repos, perRepo] of [[200, 10], [1000, 10]] as const) {
      const tag = `lin${repos}`;
      await db.pool.query(`INSERT INTO namespace (username) VALUES ($1)`, [tag]);
      await db.pool.query(
        `INSERT INTO repository (namespace_user_id, name) SELECT (SELECT id FROM namespace WHERE username = $1), 'r' || g FROM generate_series(1, $2) g`, [tag, repos]);
      await db.pool.query(
        `INSERT INTO manifest (repository_id, digest, media_type, manifest_bytes)
         SELECT r.id, 'sha256:' || encode(sha256((r.id || '/' || g)::text::bytea), 'hex'), 'application/vnd.oci.image.manifest.v1+json', '\\x7b7d'
         FROM repository r CROSS JOIN generate_series(1, $2) g WHERE r.namespace_user_id = (SELECT id FROM namespace WHERE username = $1)`, [tag, perRepo]);
      await db.pool.query(
        `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms)
         SELECT 't' || m.id, m.repository_id, m.id, 0 FROM manifest m JOIN repository r ON r.id = m.repository_id
         WHERE r.namespace_user_id = (SELECT id FROM namespace WHERE username = $1)`, [tag]);
      await db.pool.query(
        `INSERT INTO repositorynotification (repository_id, event, method, config_json)
         SELECT id, 'vulnerability_found', 'webhook', '{"url":"http://example.com"}' FROM repository WHERE namespace_user_id = (SELECT id FROM namespace WHERE username = $1)`, [tag]);
      const { rows } = await db.pool.query<{ digest: string }>(
        `SELECT m.digest FROM manifest m JOIN repository r ON r.id = m.repository_id WHERE r.namespace_user_id = (SELECT id FROM namespace WHERE username = $1)`, [tag]);
      clair.add(`n-${tag}`, rows.map((r) => entry(r.digest, 'High', 'CVE-LIN')));
      await db.pool.query('ANALYZE');
      const started = performance.now();
      expect(await runJob(`n-${tag}`, 120_000)).toBe('completed');
      timings[repos * perRepo] = performance.now() - started;
      // Distinct jobs: on a loaded machine a page can run twice (its lock lapsed and another
      // attempt took it); its rows repeat the same job ids, which the relay and delivery make no-ops.
      expect((await db.pool.query(`SELECT count(DISTINCT job_id)::int AS n FROM outbox WHERE queue_name = 'notification'`)).rows[0].n).toBe(repos * perRepo);
      await db.pool.query('DELETE FROM outbox');
    }
    const perManifest = (n: number) => timings[n]! / n;
    console.log(`secscan fan-out: 2k manifests/200 repos ${timings[2000]!.toFixed(0)} ms, 10k manifests/1k repos ${timings[10000]!.toFixed(0)} ms (${(perManifest(10000) * 1000).toFixed(0)} µs per manifest vs ${(perManifest(2000) * 1000).toFixed(0)})`);
    // Linear: the cost per manifest does not grow with the number of manifests and repositories.
    expect(perManifest(10000)).toBeLessThan(perManifest(2000) * 2);
  }, 240_000);
});
