/**
 * Helpers for the runtime's own tests: a small test queue contract with short backoffs, a logger
 * whose lines can be inspected, and polling. Test-only; production code never imports this.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { z } from 'zod';
import { defineQueue, KEEP_COMPLETED, KEEP_DEAD_LETTERS } from '../../../queues/contract.ts';
import { parseConfig, type Config } from '../../config/index.ts';
import type { Logger } from '../logger.ts';

/** The payload of the test queue: a number, and what the test handler should do with it. */
export const testPayload = z.object({
  v: z.literal(1),
  n: z.number().int().nonnegative(),
  repositoryId: z.number().int().positive().optional(),
});

/** A queue contract for tests: 3 attempts, exponential backoff from `retryAfterMs` (200 ms), no jitter. */
export function testQueue(name = 'testqueue', retryAfterMs = 200) {
  return defineQueue({
    name,
    version: 1,
    payload: testPayload,
    jobOptions: {
      attempts: 3,
      backoff: { type: 'exponential', delay: retryAfterMs, jitter: 0 },
      removeOnComplete: KEEP_COMPLETED,
      removeOnFail: KEEP_DEAD_LETTERS,
    },
    dedupeId: (p) => `${name}/${p.n}`,
    logBindings: (p) => ({ repositoryId: p.repositoryId }),
  });
}

/** A config with Quay's defaults, plus `raw` keys. */
export function testConfig(raw: Record<string, unknown> = {}): Config {
  return parseConfig(raw);
}

/** A pino logger at debug level whose JSON lines are collected in `lines`. */
export function captureLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

/** Polls `check` until it returns a truthy value (returned) or `timeoutMs` passes (throws). */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
