/**
 * A Clair notification becomes a webhook delivery promptly: the securityscanningnotificationworker
 * commits a page's vulnerability_found events to the outbox and wakes the process's relay
 * (`onOutboxWrite`, as bin/fleet.ts wires it), the relay publishes them, the notificationworker
 * POSTs them. Real Postgres, Redis, Clair notifier peer and loopback receiver; the relay's safety
 * pass is set to a minute, so only the wake-up (or its LISTEN) can explain a prompt delivery.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notification } from '../../queues/notification.ts';
import { secscanv4 } from '../../queues/secscanv4.ts';
import { parseConfig } from '../../shared/config/index.ts';
import { startOutboxRelay, type OutboxRelay } from '../../shared/runtime/outbox-relay.ts';
import { createProducer, type Producer } from '../../shared/runtime/producer.ts';
import { runWorker, type RunningWorker } from '../../shared/runtime/run-worker.ts';
import { captureLogger } from '../../shared/runtime/test-support/index.ts';
import { notificationworker } from '../../workers/notificationworker/index.ts';
import { startReceiver, type Receiver } from '../../workers/notificationworker/test-support/receiver.ts';
import { securityscanningnotificationworker } from '../../workers/securityscanningnotificationworker/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { startClairNotifier, type ClairNotifier } from '../servers/clair-notifier.ts';

let db: TestDatabase;
let clair: ClairNotifier;
let receiver: Receiver;
let producer: Producer;
let relay: OutboxRelay;
const workers: RunningWorker[] = [];
let wakes = 0;

beforeAll(async () => {
  db = await createTestDatabase('secscandelivery');
  clair = await startClairNotifier();
  receiver = await startReceiver();
  const prefix = uniquePrefix('secscandelivery');
  producer = createProducer({ url: REDIS_URL, prefix });
  const log = captureLogger().log;
  relay = await startOutboxRelay({ db: db.pool, connectionString: db.url, producer, log, safetyIntervalMs: 60_000 });
  const config = parseConfig({
    FEATURE_SECURITY_SCANNER: true, FEATURE_SECURITY_NOTIFICATIONS: true, SECURITY_SCANNER_V4_ENDPOINT: clair.url,
    SSRF_ALLOWED_HOSTS: ['127.0.0.1'], SERVER_HOSTNAME: 'quay.example',
  });
  const onOutboxWrite = () => { wakes++; relay.wake(); };
  const redis = { url: REDIS_URL, prefix };
  workers.push(
    await runWorker(securityscanningnotificationworker, { config, services: { db: db.pool, config, onOutboxWrite }, redis, log }) as RunningWorker,
    await runWorker(notificationworker, { config, services: { db: db.pool, config }, redis, log }) as RunningWorker,
  );
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop(2000)));
  await relay.stop();
  await producer.queue(secscanv4.name).obliterate({ force: true });
  await producer.queue(notification.name).obliterate({ force: true });
  await producer.close();
  await clair.close();
  await receiver.close();
  await db.drop();
});

describe('Clair notification to webhook delivery', () => {
  it('reaches the webhook well within the relay\'s safety interval', async () => {
    const digest = `sha256:${createHash('sha256').update('secscan-delivery').digest('hex')}`;
    const { rows: [ns] } = await db.pool.query<{ id: number }>(`INSERT INTO namespace (username) VALUES ('scanned') RETURNING id`);
    const { rows: [repo] } = await db.pool.query<{ id: number }>(`INSERT INTO repository (namespace_user_id, name) VALUES ($1, 'app') RETURNING id`, [ns!.id]);
    const { rows: [manifest] } = await db.pool.query<{ id: number }>(
      `INSERT INTO manifest (repository_id, digest, media_type, manifest_bytes) VALUES ($1, $2, 'application/vnd.oci.image.manifest.v1+json', '\\x7b7d') RETURNING id`,
      [repo!.id, digest]);
    await db.pool.query(`INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms) VALUES ('latest', $1, $2, 0)`, [repo!.id, manifest!.id]);
    await db.pool.query(
      `INSERT INTO repositorynotification (repository_id, event, method, config_json) VALUES ($1, 'vulnerability_found', 'webhook', $2)`,
      [repo!.id, { url: `${receiver.url}/ok/vulnerability` }]);
    clair.add('n-latency', [{
      id: '1', manifest: digest, reason: 'added',
      vulnerability: { name: 'CVE-2026-4242', description: 'a bug', normalized_severity: 'High', package: { name: 'openssl' } },
    }]);

    const started = Date.now();
    const arrived = receiver.next('/ok/vulnerability');
    await producer.enqueue(secscanv4, { v: 1, notificationId: 'n-latency' });
    const received = await arrived;
    const latencyMs = received.atMs - started;
    console.log(`Clair notification to webhook receipt: ${latencyMs} ms`);
    expect(received.body).toMatchObject({ repository: 'scanned/app', tags: ['latest'], vulnerability: { id: 'CVE-2026-4242', priority: 'High' } });
    expect(wakes).toBeGreaterThanOrEqual(1);
    // Without a wake-up the rows would wait for the safety pass (a minute here, 10 s in production).
    expect(latencyMs).toBeLessThan(5_000);
  }, 30_000);
});
