/**
 * Event-to-delivery latency with one pod per component, as Kubernetes runs them: `quayfleet
 * registry`, `quayfleet worker securityscanningnotificationworker` and `quayfleet worker
 * notificationworker` in processes of their own (test/reliability/fleet.ts), a Clair notifier peer
 * and a webhook receiver on loopback. A Clair webhook crosses three processes and two outbox
 * writes: the front end writes the `secscanv4` row, the secscan pod writes the `vulnerability_found`
 * rows, the notification pod POSTs. Each outbox write must be published at once (the writer's own
 * relay woken by `onOutboxWrite`, and every process's relay by the outbox trigger's NOTIFY), never
 * by the relays' 10 s safety pass; a row written by a process with no relay at all (any writer
 * without a wake-up of its own) must be published by the fleet's LISTEN alone.
 *
 * Ports: 23110 (front end), 23111-23113 (metrics), 23150 (the fleet's private Redis).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notification } from '../../queues/notification.ts';
import { enqueueInTransaction } from '../../shared/db/outbox.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { startReceiver, type Receiver } from '../../workers/notificationworker/test-support/receiver.ts';
import { startFleet, type Fleet } from '../reliability/fleet.ts';
import { startClairNotifier, type ClairNotifier } from '../servers/clair-notifier.ts';

const BASE_PORT = 23110;
const PSK = randomBytes(32).toString('base64');
/** Well under the relays' 10 s safety pass: only a wake-up or a NOTIFY explains a delivery this fast. */
const PROMPT_MS = 3_000;
const ROUNDS = 5;

let clair: ClairNotifier;
let receiver: Receiver;
let fleet: Fleet;
let repositoryId: number;
let notificationUuid: string;
const digest = `sha256:${createHash('sha256').update('notification-pods').digest('hex')}`;

beforeAll(async () => {
  clair = await startClairNotifier({ psk: PSK });
  receiver = await startReceiver();
  fleet = await startFleet({
    basePort: BASE_PORT, label: 'notifypods',
    processes: ['registry', 'securityscanningnotificationworker', 'notificationworker'],
    config: {
      FEATURE_SECURITY_SCANNER: true, FEATURE_SECURITY_NOTIFICATIONS: true,
      SECURITY_SCANNER_V4_ENDPOINT: clair.url, SECURITY_SCANNER_V4_PSK: PSK, SSRF_ALLOWED_HOSTS: ['127.0.0.1'],
    },
  });
  const db = fleet.pool;
  const { rows: [ns] } = await db.query<{ id: number }>(`INSERT INTO namespace (username) VALUES ('pods') RETURNING id`);
  const { rows: [repo] } = await db.query<{ id: number }>(`INSERT INTO repository (namespace_user_id, name) VALUES ($1, 'app') RETURNING id`, [ns!.id]);
  repositoryId = repo!.id;
  const { rows: [manifest] } = await db.query<{ id: number }>(
    `INSERT INTO manifest (repository_id, digest, media_type, manifest_bytes) VALUES ($1, $2, 'application/vnd.oci.image.manifest.v1+json', '\\x7b7d') RETURNING id`,
    [repositoryId, digest]);
  await db.query(`INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms) VALUES ('latest', $1, $2, 0)`, [repositoryId, manifest!.id]);
  const { rows: [target] } = await db.query<{ uuid: string }>(
    `INSERT INTO repositorynotification (repository_id, event, method, config_json) VALUES ($1, 'vulnerability_found', 'webhook', $2) RETURNING uuid::text`,
    [repositoryId, { url: `${receiver.url}/ok/pods` }]);
  notificationUuid = target!.uuid;
}, 600_000);
afterAll(async () => {
  await fleet?.stop();
  await receiver?.close();
  await clair?.close();
}, 120_000);

/** Clair's webhook call: a PSK-signed token, as Clair's notifier sends it. */
async function clairWebhook(notificationId: string): Promise<number> {
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('clair-notifier')
    .setIssuedAt().setNotBefore('0s').setExpirationTime('5m').sign(Buffer.from(PSK, 'base64'));
  const response = await fetch(`${fleet.base}/secscan/notification`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ notification_id: notificationId, callback: `${clair.url}/notifier/api/v1/notification/${notificationId}` }),
  });
  return response.status;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

describe('notification latency with one pod per component', () => {
  it('delivers a Clair notification to its webhook within a second or so, every time, through three processes', async () => {
    const latencies: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const id = `pods-${round}`;
      const cve = `CVE-2026-${1000 + round}`;
      clair.add(id, [{ id: `${round}`, manifest: digest, reason: 'added', vulnerability: { name: cve, normalized_severity: 'High', package: { name: 'openssl' } } }]);
      const arrived = receiver.next('/ok/pods');
      const started = Date.now();
      expect(await clairWebhook(id)).toBe(200);
      const received = await arrived;
      latencies.push(received.atMs - started);
      expect(received.body).toMatchObject({ repository: 'pods/app', tags: ['latest'], vulnerability: { id: cve, priority: 'High' } });
      // Rounds start at uneven moments, so a safety pass cannot line up with all of them.
      await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 1500));
    }
    console.log(`per-pod Clair webhook to webhook receipt, ${ROUNDS} rounds: ${latencies.join(', ')} ms (median ${median(latencies)} ms)`);
    expect(Math.max(...latencies)).toBeLessThan(PROMPT_MS);
    expect(await fleet.metricValue('securityscanningnotificationworker', 'quayfleet_secscan_notification_pages_total')).toBe(ROUNDS);
    expect(await fleet.metricValue('notificationworker', 'quayfleet_notification_deliveries_total', 'outcome="delivered"')).toBe(ROUNDS);
  }, 120_000);

  it('publishes an outbox row from a writer without a relay of its own by the pods\' LISTEN alone', async () => {
    const latencies: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const arrived = receiver.next('/ok/pods');
      const started = Date.now();
      // What a quota or mirror event written from any process amounts to: a committed outbox row, no wake-up call.
      await withTransaction(fleet.pool, (tx) => enqueueInTransaction(tx, notification, {
        v: 1, notificationUuid, eventId: randomUUID(), event: 'vulnerability_found', performerData: {},
        eventData: { repository: 'pods/app', namespace: 'pods', name: 'app', tags: ['latest'], vulnerability: { id: `CVE-OUTBOX-${round}`, priority: 'Critical' } },
      }));
      latencies.push((await arrived).atMs - started);
      await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 1500));
    }
    console.log(`per-pod outbox row (no wake-up) to webhook receipt, ${ROUNDS} rounds: ${latencies.join(', ')} ms (median ${median(latencies)} ms)`);
    expect(Math.max(...latencies)).toBeLessThan(PROMPT_MS);
  }, 120_000);
});
