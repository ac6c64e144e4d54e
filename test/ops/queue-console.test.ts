/**
 * The queue console (bull-board under /admin/queues) in a real headless Chromium (Debian's
 * `chromium`, driven by playwright-core) against a listening front end and the real Redis: a
 * superuser sees every queue and a dead-lettered job and retries it from the page; a normal user
 * is refused. Then, through inject(), who gets what on the page, its API and its static assets.
 */
import { UnrecoverableError, Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_QUEUE_NAMES, contractFor, repositorygc } from '../../queues/index.ts';
import { buildRegistryApp } from '../../registry/app.ts';
import { createProducer, type Producer } from '../../shared/runtime/producer.ts';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { basicAuth, startTestRegistry, type TestRegistry } from '../helpers/registry.ts';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const PORT = 21800;
const BASE = `http://127.0.0.1:${PORT}`;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const QUEUE_NAMES = ALL_QUEUE_NAMES.filter((name) => contractFor(name));
const purge = { v: 1 as const, repositoryId: 7, markerId: 7, originalName: 'r7', namespace: 'acme' };

describe('queue console', { timeout: 120_000 }, () => {
  let registry: TestRegistry;
  let app: FastifyInstance;
  let producer: Producer;
  let browser: Browser;
  let robotToken: string;
  let jobId: string;

  beforeAll(async () => {
    producer = createProducer({ url: REDIS_URL, prefix: uniquePrefix('console') });
    registry = await startTestRegistry({ label: 'console' });
    await registry.createUser('admin', 'superpassword', { superuser: true });
    await registry.createUser('alice', 'alicepassword');
    ({ token: robotToken } = await registry.createRobot('admin', 'bot'));
    app = await buildRegistryApp({ ...registry.deps, config: { ...registry.deps.config, queueConsole: true }, queues: producer });
    await app.listen({ host: '127.0.0.1', port: PORT });

    // A dead letter: a purge whose handler fails permanently.
    jobId = await producer.enqueue(repositorygc, purge);
    const { prefix } = producer.queue(repositorygc.name).opts;
    const worker = new Worker(repositorygc.name, async () => { throw new UnrecoverableError('repository row is gone'); }, {
      connection: { url: REDIS_URL, maxRetriesPerRequest: null }, prefix,
    });
    try {
      await waitFor(async () => (await producer.queue(repositorygc.name).getFailedCount()) === 1 || undefined);
    } finally {
      await worker.close();
    }
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await registry?.close();
    if (producer) {
      for (const name of QUEUE_NAMES) await producer.queue(name).obliterate({ force: true });
      await producer.close();
    }
  });

  it('shows a superuser every queue and the dead letter, and retries it from the page', async () => {
    const context = await browser.newContext({ httpCredentials: { username: 'admin', password: 'superpassword' } });
    try {
      const page = await context.newPage();
      page.on('dialog', (dialog) => void dialog.accept());
      const response = await page.goto(`${BASE}/admin/queues`);
      expect(response?.status()).toBe(200);
      const sidebar = page.locator('#bull-board-sidebar');
      for (const name of QUEUE_NAMES) await expect.poll(() => sidebar.getByText(name, { exact: true }).count(), { timeout: 30_000 }).toBe(1);

      await page.goto(`${BASE}/admin/queues/queue/${repositorygc.name}?status=failed`);
      await page.getByText(jobId, { exact: true }).waitFor();
      await page.getByText('UnrecoverableError: repository row is gone').first().waitFor();

      const retried = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().endsWith(`/${encodeURIComponent(jobId)}/retry`));
      // The job card's retry button (the icon one; "Retry all" carries the same icon and a label).
      await page.locator('button:has(svg.lucide-refresh-cw)').filter({ hasNotText: 'Retry all' }).click();
      const confirm = page.getByRole('button', { name: 'Confirm' });
      if (await confirm.isVisible()) await confirm.click();
      expect((await retried).status()).toBe(204);
      const job = await producer.queue(repositorygc.name).getJob(jobId);
      // Back in the queue under its id; bull-board keeps the attempt count (`dlq replay` resets it).
      expect(await job?.getState()).toBe('waiting');
    } finally {
      await context.close();
    }
  });

  it('refuses a normal user the page, its API and its assets', async () => {
    const context = await browser.newContext({ httpCredentials: { username: 'alice', password: 'alicepassword' } });
    try {
      const page = await context.newPage();
      const response = await page.goto(`${BASE}/admin/queues`);
      expect(response?.status()).toBe(403);
      expect(await page.locator('body').innerText()).toContain('superusers');
      for (const path of ['/admin/queues/api/queues', '/admin/queues/static/favicon-32x32.png']) {
        expect((await context.request.get(`${BASE}${path}`)).status()).toBe(403);
      }
    } finally {
      await context.close();
    }
  });

  it('asks anonymous callers for credentials everywhere under the prefix', async () => {
    for (const url of ['/admin/queues', '/admin/queues/', '/admin/queues/api/queues', '/admin/queues/static/favicon-32x32.png', '/admin/queues/queue/repositorygc']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(401);
      expect(response.headers['www-authenticate']).toMatch(/^Basic realm=/);
    }
    const wrongPassword = await app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { authorization: basicAuth('admin', 'nope') } });
    expect(wrongPassword.statusCode).toBe(401);
    expect(wrongPassword.json()).toMatchObject({ error_type: 'invalid_token' });
  });

  it('refuses robots, cross-site writes, and jobs that bypass their contract', async () => {
    const robot = await app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { authorization: basicAuth('admin+bot', robotToken) } });
    expect(robot.statusCode).toBe(403);
    const admin = basicAuth('admin', 'superpassword');
    const crossSite = await app.inject({
      method: 'PUT', url: `/admin/queues/api/queues/${repositorygc.name}/pause`, headers: { authorization: admin, origin: 'https://evil.example' },
    });
    expect(crossSite.statusCode).toBe(403);
    expect(await producer.queue(repositorygc.name).isPaused()).toBe(false);
    const add = await app.inject({
      method: 'POST', url: `/admin/queues/api/queues/${repositorygc.name}/add`, headers: { authorization: admin, 'content-type': 'application/json' },
      payload: { name: 'x', data: { anything: true } },
    });
    expect(add.statusCode).toBe(403);
    const listed = await app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { authorization: admin } });
    expect(listed.statusCode).toBe(200);
    expect(listed.headers['x-frame-options']).toBe('DENY');
  });

  it('is not served unless configured', async () => {
    const response = await registry.app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: basicAuth('admin', 'superpassword') } });
    expect(response.statusCode).toBe(404);
  });
});
