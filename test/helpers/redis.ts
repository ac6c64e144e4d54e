/**
 * Redis for tests: the shared server, isolated per test by a unique BullMQ key prefix, so test
 * files running in parallel never see each other's queues.
 */
import { randomBytes } from 'node:crypto';
import { TEST_REDIS_URL } from '../servers/ports.ts';

export const REDIS_URL = TEST_REDIS_URL;

/** A BullMQ prefix no other test uses. */
export function uniquePrefix(label = 'test'): string {
  return `qftest:${label}:${randomBytes(4).toString('hex')}`;
}
