/**
 * The quota worker in its own process, so a test can SIGKILL it mid-backfill. argv: database URL,
 * BullMQ prefix. Logs pino JSON on stdout (the parent counts "namespace quota totals computed").
 */
import { pino } from 'pino';
import { createPool } from '../../shared/db/pool.ts';
import { runWorker } from '../../shared/runtime/run-worker.ts';
import { quotatotalworker } from '../../workers/quotatotalworker/index.ts';
import { REDIS_URL } from '../helpers/redis.ts';
import { quotaConfig } from './fixtures.ts';

const [url, prefix] = process.argv.slice(2);
const db = createPool({ connectionString: url!, max: 4 });
const config = quotaConfig({ QUOTA_BACKFILL_POLL_PERIOD: 1, QUOTA_BACKFILL_BATCH_SIZE: 1000 });
await runWorker(quotatotalworker, {
  config, services: { db, config }, redis: { url: REDIS_URL, prefix: prefix! }, log: pino({ level: 'info' }),
  concurrency: 1, lease: { lockDurationMs: 1000, stalledIntervalMs: 500 },
});
