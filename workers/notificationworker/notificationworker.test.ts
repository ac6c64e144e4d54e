/**
 * The notificationworker on real Postgres, Redis and a loopback webhook receiver: delivery with
 * Quay's body or a template, a failed delivery retried and delivered, failures (500, timeout,
 * redirect) counted until the notification is disabled, reset, SSRF refusal at delivery, at most
 * once per (notification, event id) including a worker SIGKILLed after its POST left.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { notification, type NotificationPayload } from '../../queues/notification.ts';
import { parseConfig, type Config } from '../../shared/config/index.ts';
import { registry } from '../../shared/metrics/index.ts';
import { createProducer, type Producer } from '../../shared/runtime/producer.ts';
import { runWorker, type RunningWorker } from '../../shared/runtime/run-worker.ts';
import { captureLogger, waitFor } from '../../shared/runtime/test-support/index.ts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { REDIS_URL, uniquePrefix } from '../../test/helpers/redis.ts';
import { killWorkerChild, spawnWorkerChild } from '../../test/helpers/worker-child.ts';
import { deliveryState } from './deliveries.ts';
import { notificationworker } from './index.ts';
import { startReceiver, type Receiver } from './test-support/receiver.ts';

let db: TestDatabase;
let receiver: Receiver;
let producer: Producer;
let prefix: string;
let repositoryId: number;
let running: RunningWorker[] = [];
const rawConfig = { SSRF_ALLOWED_HOSTS: ['127.0.0.1'], NOTIFICATION_SEND_TIMEOUT: 1 };
const config = parseConfig(rawConfig);

beforeAll(async () => {
  db = await createTestDatabase('notificationworker');
  receiver = await startReceiver();
  prefix = uniquePrefix('notificationworker');
  producer = createProducer({ url: REDIS_URL, prefix });
  const { rows: [ns] } = await db.pool.query<{ id: number }>(`INSERT INTO namespace (username, email) VALUES ('acme', 'acme@example.com') RETURNING id`);
  const { rows: [repo] } = await db.pool.query<{ id: number }>(`INSERT INTO repository (namespace_user_id, name) VALUES ($1, 'app') RETURNING id`, [ns!.id]);
  repositoryId = repo!.id;
});
afterEach(async () => {
  await Promise.all(running.map((w) => w.stop(2000)));
  running = [];
});
afterAll(async () => {
  await producer.queue(notification.name).obliterate({ force: true });
  await producer.close();
  await receiver.close();
  await db.drop();
});

async function start(workerConfig: Config = config): Promise<void> {
  const worker = await runWorker(notificationworker, {
    config: workerConfig, services: { db: db.pool, config: workerConfig }, redis: { url: REDIS_URL, prefix }, log: captureLogger().log,
    lease: { lockDurationMs: 1000, stalledIntervalMs: 500 },
  });
  if (!worker.disabled) running.push(worker);
}

async function addNotification(method: string, methodConfig: Record<string, unknown>, options: { event?: string; eventConfig?: Record<string, unknown> } = {}): Promise<string> {
  const { rows } = await db.pool.query<{ uuid: string }>(
    `INSERT INTO repositorynotification (repository_id, event, method, config_json, event_config_json) VALUES ($1, $2, $3, $4, $5) RETURNING uuid::text`,
    [repositoryId, options.event ?? 'repo_push', method, methodConfig, options.eventConfig ?? {}]);
  return rows[0]!.uuid;
}

const eventData = { repository: 'acme/app', namespace: 'acme', name: 'app', docker_url: 'localhost:8080/acme/app', homepage: 'http://localhost:8080/repository/acme/app', updated_tags: ['v1'] };

function payload(notificationUuid: string, extra: Partial<NotificationPayload> = {}): NotificationPayload {
  return { v: 1, notificationUuid, eventId: randomUUID(), event: 'repo_push', eventData, performerData: {}, ...extra };
}

async function settled(p: NotificationPayload, timeoutMs = 15_000): Promise<string> {
  const id = notification.dedupeId(p);
  return waitFor(async () => {
    const job = await producer.queue(notification.name).getJob(id);
    const state = await job?.getState();
    // A failed attempt waits 30 s for its retry: 'delayed' is as settled as the test needs.
    return state === 'completed' || state === 'failed' || (state === 'delayed' && (job?.attemptsMade ?? 0) > 0) ? state : undefined;
  }, timeoutMs);
}

async function failures(uuid: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(`SELECT number_of_failures AS n FROM repositorynotification WHERE uuid = $1`, [uuid]);
  return rows[0]!.n;
}

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const values = (await registry.getSingleMetric(name)!.get()).values;
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

describe('notificationworker', () => {
  it('POSTs Quay\'s body (the event_data) to a webhook and records the success', async () => {
    await start();
    const uuid = await addNotification('webhook', { url: `${receiver.url}/ok/plain` });
    const p = payload(uuid);
    const arrived = receiver.next('/ok/plain');
    await producer.enqueue(notification, p);
    expect((await arrived).body).toEqual(eventData);
    expect(await settled(p)).toBe('completed');
    expect(await deliveryState(db.pool, uuid, p.eventId)).toEqual({ state: 'delivered', attempts: 1 });
    const { rows } = await db.pool.query(`SELECT last_ran_ms FROM repositorynotification WHERE uuid = $1`, [uuid]);
    expect(rows[0]!.last_ran_ms).toBeGreaterThan(0);
  });

  it('applies a webhook template to the event data', async () => {
    await start();
    const template = JSON.stringify({ text: '${repository} got ${updated_tags[0]}', tags: '${updated_tags}', missing: '${nope.x}' });
    const uuid = await addNotification('webhook', { url: `${receiver.url}/ok/template`, template });
    const arrived = receiver.next('/ok/template');
    await producer.enqueue(notification, payload(uuid));
    expect((await arrived).body).toEqual({ text: 'acme/app got v1', tags: ['v1'], missing: '(none)' });
  });

  it('counts a 500, a timeout and a redirect as failures; the third in a row disables the notification until reset', async () => {
    await start();
    const uuid = await addNotification('webhook', { url: `${receiver.url}/fail` });
    const disabledBefore = await metricValue('quayfleet_notifications_disabled_total', { method: 'webhook' });
    const first = payload(uuid);
    await producer.enqueue(notification, first);
    expect(await settled(first)).toBe('delayed');
    expect(await failures(uuid)).toBe(1);
    expect(await deliveryState(db.pool, uuid, first.eventId)).toMatchObject({ state: 'failed' });

    await db.pool.query(`UPDATE repositorynotification SET config_json = $2 WHERE uuid = $1`, [uuid, { url: `${receiver.url}/hang` }]);
    const second = payload(uuid);
    const started = Date.now();
    await producer.enqueue(notification, second);
    expect(await settled(second)).toBe('delayed');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(await failures(uuid)).toBe(2);
    expect((await db.pool.query(`SELECT last_error FROM notificationdelivery WHERE event_id = $1`, [second.eventId])).rows[0].last_error)
      .toMatch(/timed out after 1000 ms/);

    await db.pool.query(`UPDATE repositorynotification SET config_json = $2 WHERE uuid = $1`, [uuid, { url: `${receiver.url}/redirect` }]);
    const third = payload(uuid);
    await producer.enqueue(notification, third);
    // The third failure disables it: the job ends instead of retrying.
    expect(await settled(third)).toBe('completed');
    expect(await failures(uuid)).toBe(3);
    expect(receiver.received.filter((r) => r.path === '/ok')).toEqual([]);
    expect(await metricValue('quayfleet_notifications_disabled_total', { method: 'webhook' })).toBe(disabledBefore + 1);
    expect(await metricValue('quayfleet_notifications_disabled', { method: 'webhook' })).toBeGreaterThanOrEqual(1);

    // Disabled: a fourth event is dropped without any request.
    await db.pool.query(`UPDATE repositorynotification SET config_json = $2 WHERE uuid = $1`, [uuid, { url: `${receiver.url}/ok/after` }]);
    const fourth = payload(uuid);
    await producer.enqueue(notification, fourth);
    expect(await settled(fourth)).toBe('completed');
    expect(receiver.received.filter((r) => r.path === '/ok/after')).toEqual([]);
    expect(await deliveryState(db.pool, uuid, fourth.eventId)).toBeUndefined();

    // Below the limit again (the API's reset is tested in registry/api/notifications.test.ts): delivered,
    // and a success puts the count of consecutive failures back to 0.
    await db.pool.query(`UPDATE repositorynotification SET number_of_failures = 2 WHERE uuid = $1`, [uuid]);
    const fifth = payload(uuid);
    const arrived = receiver.next('/ok/after');
    await producer.enqueue(notification, fifth);
    await arrived;
    expect(await settled(fifth)).toBe('completed');
    expect(await failures(uuid)).toBe(0);
  }, 30_000);

  it('retries a failed delivery and delivers the event on a later attempt', async () => {
    await start();
    const uuid = await addNotification('webhook', { url: `${receiver.url}/fail/retry` });
    const p = payload(uuid);
    await producer.enqueue(notification, p);
    expect(await settled(p)).toBe('delayed');
    expect(await failures(uuid)).toBe(1);
    // The target recovers; the retry (30 s away, promoted here) sends the same event again.
    await db.pool.query(`UPDATE repositorynotification SET config_json = $2 WHERE uuid = $1`, [uuid, { url: `${receiver.url}/ok/retry` }]);
    const arrived = receiver.next('/ok/retry');
    const job = await producer.queue(notification.name).getJob(notification.dedupeId(p));
    expect(job!.opts.attempts).toBe(5);
    await job!.promote();
    expect((await arrived).body).toEqual(eventData);
    await waitFor(async () => ((await job!.getState()) === 'completed' ? true : undefined), 15_000);
    expect(await deliveryState(db.pool, uuid, p.eventId)).toEqual({ state: 'delivered', attempts: 2 });
    expect(await failures(uuid)).toBe(0);
    expect(receiver.received.filter((r) => r.path === '/ok/retry')).toHaveLength(1);
  });

  it('refuses a private target at delivery when SSRF_ALLOWED_HOSTS does not allow it', async () => {
    await start(parseConfig({ NOTIFICATION_SEND_TIMEOUT: 1 }));
    const uuid = await addNotification('webhook', { url: `${receiver.url}/ok/ssrf` });
    const p = payload(uuid);
    await producer.enqueue(notification, p);
    expect(await settled(p)).toBe('delayed');
    expect(receiver.received.filter((r) => r.path === '/ok/ssrf')).toEqual([]);
    expect((await db.pool.query(`SELECT last_error FROM notificationdelivery WHERE event_id = $1`, [p.eventId])).rows[0].last_error).toMatch(/loopback/);
  });

  it('filters vulnerability_found by the notification\'s minimum severity', async () => {
    await start();
    const uuid = await addNotification('webhook', { url: `${receiver.url}/ok/vuln` }, { event: 'vulnerability_found', eventConfig: { vulnerability: { priority: 'High' } } });
    const vulnerable = (priority: string) => payload(uuid, {
      event: 'vulnerability_found', eventData: { ...eventData, tags: ['v1'], vulnerability: { id: 'CVE-1', priority, description: 'd', link: '', has_fix: false } },
    });
    const low = vulnerable('Low');
    await producer.enqueue(notification, low);
    expect(await settled(low)).toBe('completed');
    const critical = vulnerable('Critical');
    const arrived = receiver.next('/ok/vuln');
    await producer.enqueue(notification, critical);
    expect(((await arrived).body as { vulnerability: { priority: string } }).vulnerability.priority).toBe('Critical');
    expect(receiver.received.filter((r) => r.path === '/ok/vuln')).toHaveLength(1);
  });

  it('sends Quay\'s Slack message', async () => {
    await start();
    const uuid = await addNotification('slack', { url: `${receiver.url}/ok/slack` });
    const arrived = receiver.next('/ok/slack');
    await producer.enqueue(notification, payload(uuid));
    expect((await arrived).body).toEqual({
      text: 'Repository acme/app updated', username: 'quayiobot',
      attachments: [{
        fallback: 'Repository acme/app updated', color: 'good', mrkdwn_in: ['text'],
        text: 'Repository <http://localhost:8080/repository/acme/app|acme/app> has been pushed with the following tags updated: v1',
      }],
    });
  });

  it('sends an e-mail through SMTP with Quay\'s MAIL_* keys (a real SMTP server on loopback)', async () => {
    const messages: { from: string; to: string[]; data: string }[] = [];
    const smtp = new SMTPServer({
      authOptional: true, disabledCommands: ['STARTTLS'], logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          messages.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(chunks).toString() });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    try {
      const port = (smtp.server.address() as AddressInfo).port;
      await start(parseConfig({ ...rawConfig, MAIL_SERVER: '127.0.0.1', MAIL_PORT: port, MAIL_USE_TLS: false, MAIL_DEFAULT_SENDER: 'quay@example.com' }));
      const uuid = await addNotification('email', { email: 'ops@example.com' });
      const p = payload(uuid);
      await producer.enqueue(notification, p);
      expect(await settled(p)).toBe('completed');
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({ from: 'quay@example.com', to: ['ops@example.com'] });
      expect(messages[0]!.data).toContain('Subject: Repository acme/app updated');
      // The HTML part is quoted-printable: undo soft line breaks and =XX escapes before reading it.
      const body = messages[0]!.data.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
      expect(body).toContain('<a href="http://localhost:8080/repository/acme/app">acme/app</a> has been pushed with the following tags updated: v1');

      // Namespace notifications mail the namespace's own address, else its admins (Quay), not config.email.
      const { rows: [org] } = await db.pool.query<{ id: number }>(
        `INSERT INTO namespace (username, email, organization) VALUES ('quotaorg', 'contact@quotaorg.example', true) RETURNING id`);
      const { rows: [team] } = await db.pool.query<{ id: number }>(`INSERT INTO team (organization_id, name, role) VALUES ($1, 'owners', 'admin') RETURNING id`, [org!.id]);
      for (const name of ['ann', 'ben']) {
        await db.pool.query(`INSERT INTO teammember (team_id, user_id) SELECT $1, id FROM namespace WHERE username = $2`,
          [team!.id, (await db.pool.query(`INSERT INTO namespace (username, email) VALUES ($1, $2) RETURNING username`, [name, `${name}@example.com`])).rows[0].username]);
      }
      const { rows: [nsNotification] } = await db.pool.query<{ uuid: string }>(
        `INSERT INTO namespacenotification (namespace_id, event, method, config_json) VALUES ($1, 'quota_warning', 'email', '{"email": "ignored@example.com"}') RETURNING uuid::text`, [org!.id]);
      const quota = (): NotificationPayload => payload(nsNotification!.uuid, {
        event: 'quota_warning', notificationType: 'namespace', eventData: { namespace: 'quotaorg', threshold_percent: 80, usage_percent: 85 },
      });
      const toContact = quota();
      await producer.enqueue(notification, toContact);
      expect(await settled(toContact)).toBe('completed');
      expect(messages.at(-1)).toMatchObject({ to: ['contact@quotaorg.example'] });
      expect(messages.at(-1)!.data).toContain('Subject: Quota warning for namespace quotaorg');
      await db.pool.query(`UPDATE namespace SET email = NULL WHERE id = $1`, [org!.id]);
      const toAdmins = quota();
      await producer.enqueue(notification, toAdmins);
      expect(await settled(toAdmins)).toBe('completed');
      expect(messages.at(-1)!.to.sort()).toEqual(['ann@example.com', 'ben@example.com']);
    } finally {
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
    // No SMTP server answering: a failed delivery, retried.
    const uuid = await addNotification('email', { email: 'ops@example.com' });
    const p = payload(uuid);
    await producer.enqueue(notification, p);
    expect(await settled(p)).toBe('delayed');
    expect(await failures(uuid)).toBe(1);
  });

  it('stores quay_notification rows for the target user', async () => {
    await start();
    const { rows: [user] } = await db.pool.query<{ id: number }>(`INSERT INTO namespace (username) VALUES ('carol') RETURNING id`);
    const uuid = await addNotification('quay_notification', { target: { kind: 'user', name: 'carol' } });
    const p = payload(uuid);
    await producer.enqueue(notification, p);
    expect(await settled(p)).toBe('completed');
    const { rows } = await db.pool.query(`SELECT kind, metadata_json FROM notification WHERE target_id = $1`, [user!.id]);
    expect(rows).toEqual([{ kind: 'repo_push', metadata_json: eventData }]);
  });

  it('delivers an event id at most once: a republished job is a no-op', async () => {
    await start();
    const uuid = await addNotification('webhook', { url: `${receiver.url}/ok/once` });
    const p = payload(uuid);
    const arrived = receiver.next('/ok/once');
    await producer.enqueue(notification, p);
    await arrived;
    expect(await settled(p)).toBe('completed');
    // The completed job is gone (retention ended, Redis flushed): the outbox republishes it.
    await (await producer.queue(notification.name).getJob(notification.dedupeId(p)))!.remove();
    await producer.enqueue(notification, p);
    expect(await settled(p)).toBe('completed');
    expect(receiver.received.filter((r) => r.path === '/ok/once')).toHaveLength(1);
    expect(await metricValue('quayfleet_notification_deliveries_total', { method: 'webhook', outcome: 'duplicate' })).toBeGreaterThanOrEqual(1);
  });

  it('does not deliver again when the worker is SIGKILLed after its POST left', async () => {
    const uuid = await addNotification('webhook', { url: `${receiver.url}/hold` });
    const child = await spawnWorkerChild({
      worker: 'notificationworker', databaseUrl: db.url, redisUrl: REDIS_URL, prefix, config: { ...rawConfig, NOTIFICATION_SEND_TIMEOUT: 30 },
    });
    try {
      const p = payload(uuid);
      const arrived = receiver.next('/hold');
      await producer.enqueue(notification, p);
      await arrived;
      // The target has the event; the worker dies before it hears back.
      await killWorkerChild(child);
      receiver.release();
      expect(await deliveryState(db.pool, uuid, p.eventId)).toMatchObject({ state: 'sending' });

      // Another worker takes the job over when its lease lapses, and does not send it again.
      await start();
      expect(await settled(p, 45_000)).toBe('completed');
      expect(receiver.received.filter((r) => r.path === '/hold')).toHaveLength(1);
      expect(await deliveryState(db.pool, uuid, p.eventId)).toMatchObject({ state: 'in_doubt' });
    } finally {
      await killWorkerChild(child);
    }
  }, 120_000);
});
