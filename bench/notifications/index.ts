/**
 * Notifications benchmark, two figures:
 *
 * 1. 10k webhook deliveries to a loopback receiver through the notificationworker (real BullMQ,
 *    Postgres delivery records, SSRF-checked connections, concurrency 16): deliveries/s and the
 *    latency from enqueue to receipt (p50, p99). Peer, at the same time on its own queue: a bare
 *    BullMQ worker with the same concurrency that POSTs the same bodies with node:http and nothing else.
 *    `ratio` compares the deliveries of each side while both ran (`wholeRunRatio`: each side's
 *    own rate, which favours the side that finishes last, alone on the machine by then).
 * 2. One Clair notification of 100k affected manifests (10k repositories × 10 tagged manifests,
 *    one vulnerability_found notification each) served by the Clair notifier peer server,
 *    handled by the securityscanningnotificationworker in its own process (so its memory is not
 *    the peer's): time, and the worker process's RSS when ready and at its peak (VmHWM).
 *
 *   npm run bench -- notifications        (BENCH_SCALE=0.1 for a tenth)
 *
 * Needs Postgres and Redis (TEST_DATABASE_URL, TEST_REDIS_URL). The load average is printed before
 * and after (the machine may be shared). The last line printed is one JSON object.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'bullmq';
import { notification } from '../../queues/notification.ts';
import { secscanv4 } from '../../queues/secscanv4.ts';
import { parseConfig } from '../../shared/config/index.ts';
import { createProducer } from '../../shared/runtime/producer.ts';
import { bullOptions } from '../../shared/runtime/redis.ts';
import { runWorker, type RunningWorker } from '../../shared/runtime/run-worker.ts';
import { captureLogger, waitFor } from '../../shared/runtime/test-support/index.ts';
import { createTestDatabase } from '../../test/helpers/db.ts';
import { REDIS_URL, uniquePrefix } from '../../test/helpers/redis.ts';
import { killWorkerChild, spawnWorkerChild } from '../../test/helpers/worker-child.ts';
import { preparePostgresTemplate } from '../../test/servers/postgres-redis.ts';
import { startClairNotifier } from '../../test/servers/clair-notifier.ts';
import { startReceiver } from '../../workers/notificationworker/test-support/receiver.ts';
import { notificationworker } from '../../workers/notificationworker/index.ts';
import { loadLine, printResult } from '../report.ts';

console.log(loadLine('before'));

const scale = Number(process.env.BENCH_SCALE ?? 1);
if (!(scale > 0)) throw new Error('BENCH_SCALE must be a positive number');
const DELIVERIES = Math.max(500, Math.round(10_000 * scale));
const REPOSITORIES = Math.max(100, Math.round(10_000 * scale));
const PER_REPOSITORY = 10;
const CONCURRENCY = notificationworker.concurrency;
const SECSCAN_HEAP_MIB = 64;
/** `deliveries`, `secscan` or both (default). */
const PARTS = new Set((process.env.BENCH_PARTS ?? 'deliveries,secscan').split(','));

const loadBefore = os.loadavg();
console.log(`load average before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
await preparePostgresTemplate();
const database = await createTestDatabase('notifybench');
const receiver = await startReceiver();
const log = captureLogger().log;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))]!;
};

async function enqueueAll(enqueue: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < DELIVERIES; i += 200) {
    await Promise.all(Array.from({ length: Math.min(200, DELIVERIES - i) }, (_, k) => enqueue(i + k)));
  }
}

async function measure(label: string, path: string, run: (prefix: string) => Promise<() => Promise<void>>) {
  const prefix = uniquePrefix(`notifybench-${label}`);
  const stop = await run(prefix);
  const producer = createProducer({ url: REDIS_URL, prefix });
  const started = performance.now();
  const uuid = (await database.pool.query<{ uuid: string }>(`SELECT uuid::text AS uuid FROM repositorynotification LIMIT 1`)).rows[0]!.uuid;
  await enqueueAll((i) => producer.enqueue(notification, {
    v: 1, notificationUuid: uuid, eventId: randomUUID(), event: 'repo_push', performerData: {},
    eventData: { repository: 'bench/app', namespace: 'bench', name: 'app', updated_tags: [`t${i}`], sentAt: Date.now() },
  }));
  const arrived = () => receiver.received.filter((r) => r.path.startsWith(path));
  await waitFor(() => (arrived().length >= DELIVERIES ? true : undefined), 600_000, 50);
  const seconds = (performance.now() - started) / 1000;
  const latencies = arrived().map((r) => r.atMs - ((r.body as { sentAt: number }).sentAt));
  await stop();
  await producer.queue(notification.name).obliterate({ force: true });
  await producer.close();
  const result = { perSecond: DELIVERIES / seconds, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), startedAtMs: Date.now() - seconds * 1000, endedAtMs: Date.now(), path };
  console.log(`${label}: ${DELIVERIES} deliveries in ${seconds.toFixed(1)} s = ${result.perSecond.toFixed(0)}/s, enqueue to receipt p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms`);
  return result;
}

/** 10k webhook deliveries: the worker against the bare peer, at the same time. */
async function benchDeliveries() {
  // The notification the deliveries go to.
  const { rows: [ns] } = await database.pool.query<{ id: number }>(`INSERT INTO namespace (username) VALUES ('bench') RETURNING id`);
  const { rows: [repo] } = await database.pool.query<{ id: number }>(`INSERT INTO repository (namespace_user_id, name) VALUES ($1, 'app') RETURNING id`, [ns!.id]);
  await database.pool.query(
    `INSERT INTO repositorynotification (repository_id, event, method, config_json) VALUES ($1, 'repo_push', 'webhook', $2)`,
    [repo!.id, { url: `${receiver.url}/ok/fleet` }]);
  const config = parseConfig({ SSRF_ALLOWED_HOSTS: ['127.0.0.1'] });

  // Both sides run at once, on their own queues, so load from elsewhere on the machine hits them alike.
  const agent = new http.Agent({ keepAlive: false });
  const fleetRun = measure('notificationworker', '/ok/fleet', async (prefix) => {
    const worker = await runWorker(notificationworker, { config, services: { db: database.pool, config }, redis: { url: REDIS_URL, prefix }, log }) as RunningWorker;
    return () => worker.stop(5000);
  });

  const peerRun = measure('bare BullMQ + node:http', '/ok/peer', async (prefix) => {
    const worker = new Worker(notification.name, async (job) => {
      const body = Buffer.from(JSON.stringify((job.data as { eventData: unknown }).eventData));
      await new Promise<void>((resolve, reject) => {
        const request = http.request(`${receiver.url}/ok/peer`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (response) => {
          response.resume();
          response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(String(response.statusCode)))));
        });
        request.on('error', reject);
        request.end(body);
      });
    }, { connection: bullOptions({ url: REDIS_URL, prefix }, notification.name).connection, prefix, concurrency: CONCURRENCY });
    await worker.waitUntilReady();
    return () => worker.close();
  });
  const [fleetSide, peerSide] = await Promise.all([fleetRun, peerRun]);
  // Once one side is done the other has the machine to itself: the ratio compares deliveries while both ran.
  const windowStart = Math.max(fleetSide.startedAtMs, peerSide.startedAtMs);
  const windowEnd = Math.min(fleetSide.endedAtMs, peerSide.endedAtMs);
  const inWindow = (path: string) => receiver.received.filter((r) => r.path.startsWith(path) && r.atMs >= windowStart && r.atMs <= windowEnd).length;
  const sameWindowRatio = inWindow(fleetSide.path) / Math.max(1, inWindow(peerSide.path));
  const summary = ({ perSecond, p50Ms, p99Ms }: typeof fleetSide) => ({ perSecond, p50Ms, p99Ms });
  const [fleet, peer] = [summary(fleetSide), summary(peerSide)];
  console.log(`while both ran (${((windowEnd - windowStart) / 1000).toFixed(1)} s): ${inWindow(fleetSide.path)} against ${inWindow(peerSide.path)} deliveries, ratio ${sameWindowRatio.toFixed(2)}`);
  return { quayfleet: fleet, peer, ratio: sameWindowRatio, wholeRunRatio: fleet.perSecond / peer.perSecond };
}

/** One Clair notification of REPOSITORIES × PER_REPOSITORY affected manifests, handled in a child process. */
async function benchSecscan() {
  // One Clair notification of REPOSITORIES × PER_REPOSITORY affected manifests.
  const clair = await startClairNotifier();
  await database.pool.query(`INSERT INTO namespace (username) VALUES ('scanned')`);
  const scanned = `(SELECT id FROM namespace WHERE username = 'scanned')`;
  await database.pool.query(`INSERT INTO repository (namespace_user_id, name) SELECT ${scanned}, 'r' || g FROM generate_series(1, $1) g`, [REPOSITORIES]);
  await database.pool.query(
    `INSERT INTO manifest (repository_id, digest, media_type, manifest_bytes)
     SELECT r.id, 'sha256:' || encode(sha256((r.id || '/' || g)::text::bytea), 'hex'), 'application/vnd.oci.image.manifest.v1+json', '\\x7b7d'
     FROM repository r CROSS JOIN generate_series(1, $1) g WHERE r.namespace_user_id = ${scanned}`, [PER_REPOSITORY]);
  await database.pool.query(
    `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms)
     SELECT 't' || m.id, m.repository_id, m.id, 0 FROM manifest m JOIN repository r ON r.id = m.repository_id WHERE r.namespace_user_id = ${scanned}`);
  await database.pool.query(
    `INSERT INTO repositorynotification (repository_id, event, method, config_json)
     SELECT id, 'vulnerability_found', 'webhook', '{"url":"http://example.com"}' FROM repository WHERE namespace_user_id = ${scanned}`);
  await database.pool.query('ANALYZE');
  const { rows: digests } = await database.pool.query<{ digest: string }>(
    `SELECT m.digest FROM manifest m JOIN repository r ON r.id = m.repository_id WHERE r.namespace_user_id = ${scanned}`);
  clair.add('bench-notification', digests.map((d, i) => ({
    id: String(i), manifest: d.digest, reason: 'added' as const,
    vulnerability: { name: 'CVE-2026-0001', description: 'bench', normalized_severity: 'High' as const, package: { name: 'openssl' } },
  })));
  const secscanPrefix = uniquePrefix('notifybench-secscan');
  const secscanProducer = createProducer({ url: REDIS_URL, prefix: secscanPrefix });
  const secscanWorker = await spawnWorkerChild({
    worker: 'securityscanningnotificationworker', databaseUrl: database.url, redisUrl: REDIS_URL, prefix: secscanPrefix, leaseMs: 30_000,
    // A heap cap far below what 100k manifests would take if the worker kept them: it must page.
    nodeFlags: [`--max-old-space-size=${SECSCAN_HEAP_MIB}`],
    config: { FEATURE_SECURITY_SCANNER: true, FEATURE_SECURITY_NOTIFICATIONS: true, SECURITY_SCANNER_V4_ENDPOINT: clair.url },
  });
  const memoryOf = (field: 'VmRSS' | 'VmHWM') => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${secscanWorker.pid}/status`, 'utf8'))![1]) / 1024;
  const baseRss = memoryOf('VmRSS');
  const started = performance.now();
  const jobId = await secscanProducer.enqueue(secscanv4, { v: 1, notificationId: 'bench-notification' });
  await waitFor(async () => ((await (await secscanProducer.queue(secscanv4.name).getJob(jobId))?.getState()) === 'completed' ? true : undefined), 600_000, 100);
  const secscanSeconds = (performance.now() - started) / 1000;
  const peakRss = memoryOf('VmHWM');
  const events = (await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE queue_name = 'notification'`)).rows[0]!.n;
  console.log(`Clair notification of ${digests.length} affected manifests across ${REPOSITORIES} repositories: ${secscanSeconds.toFixed(1)} s `
    + `(${(digests.length / secscanSeconds).toFixed(0)} manifests/s), ${events} notification jobs, worker process RSS ${baseRss.toFixed(0)} MiB when ready, peak ${peakRss.toFixed(0)} MiB (+${(peakRss - baseRss).toFixed(0)} MiB)`);

  await killWorkerChild(secscanWorker);
  await secscanProducer.queue(secscanv4.name).obliterate({ force: true });
  await secscanProducer.close();
  await clair.close();
  return { manifests: digests.length, repositories: REPOSITORIES, seconds: secscanSeconds, jobs: events, workerRssMiB: baseRss, workerPeakRssMiB: peakRss, addedRssMiB: peakRss - baseRss, heapCapMiB: SECSCAN_HEAP_MIB };
}

const deliveries = PARTS.has('deliveries') ? await benchDeliveries() : undefined;
const secscan = PARTS.has('secscan') ? await benchSecscan() : undefined;
await receiver.close();
await database.drop();
const loadAfter = os.loadavg();
console.log(`load average after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`);
printResult({
  bench: 'notifications', deliveries: DELIVERIES, ...deliveries,
  loadAverage: { before: loadBefore[0], after: loadAfter[0] },
  secscan,
});
process.exit(0);
