/**
 * The securityscanningnotificationworker in its own process, so a test can SIGKILL it mid-page.
 * Env: QF_DATABASE_URL, QF_REDIS_URL, QF_PREFIX, QF_CONFIG (JSON of config.yaml keys).
 */
import { pino } from 'pino';
import { parseConfig } from '../../../shared/config/index.ts';
import { createPool } from '../../../shared/db/pool.ts';
import { runWorker } from '../../../shared/runtime/run-worker.ts';
import { securityscanningnotificationworker } from '../index.ts';

const config = parseConfig(JSON.parse(process.env.QF_CONFIG ?? '{}') as Record<string, unknown>);
const pool = createPool({ connectionString: process.env.QF_DATABASE_URL!, max: 2 });
await runWorker(securityscanningnotificationworker, {
  config, services: { db: pool, config },
  redis: { url: process.env.QF_REDIS_URL!, prefix: process.env.QF_PREFIX },
  log: pino({ level: 'warn' }),
  lease: { lockDurationMs: 1000, stalledIntervalMs: 500 },
});
process.stdout.write('ready\n');
