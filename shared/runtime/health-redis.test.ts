/**
 * The Redis health pinger through a real outage: a redis-server of this file's own is stopped and
 * started again under it. The process survives, the check reports false then true, the outage is
 * logged once in the JSON log, and ioredis never prints an unhandled error event to stderr.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../../test/servers/private-redis.ts';
import { redisCheck, redisPinger } from './health.ts';

/** This file's redis-server (branch f-config's port range). */
const PORT = 22620;
let server: PrivateRedis | undefined;

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

afterEach(() => { vi.restoreAllMocks(); });
afterAll(async () => server?.destroy());

describe('the Redis health pinger', () => {
  it('survives a Redis outage: the check fails, then recovers; one warning in the log, nothing on stderr', async () => {
    const lines: { level: number; msg: string }[] = [];
    const log = pino({ level: 'info' }, new Writable({ write(chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done(); } }));
    const consoleError = vi.spyOn(console, 'error');
    server = await startPrivateRedis(PORT);
    const pinger = redisPinger({ url: `redis://127.0.0.1:${PORT}` }, log);
    const check = redisCheck(pinger);
    const healthy = () => check(new AbortController().signal).catch(() => false);
    try {
      expect(await healthy()).toBe(true);
      await server.stop();
      await waitFor(async () => !(await healthy()), 'the check to fail');
      // Reconnect attempts go on meanwhile, each one an 'error' event.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await healthy()).toBe(false);
      await server.start();
      await waitFor(healthy, 'the check to pass again');
    } finally {
      pinger.disconnect();
    }
    const messages = lines.map((line) => line.msg);
    expect(messages.filter((msg) => msg.startsWith('Redis is unreachable'))).toHaveLength(1);
    expect(messages).toContain('Redis answers again');
    expect(consoleError.mock.calls.flat().join(' ')).not.toMatch(/Unhandled error event/);
  });
});
