/**
 * A storagereplicationworker process for the SIGKILL test. Env: QF_CONFIG (Quay config as JSON),
 * QF_DATABASE_URL, QF_REDIS_URL, QF_PREFIX. Job leases last 2 s, so a killed process's job is
 * redelivered quickly. Prints `ready` once it takes jobs.
 */
import { pino } from 'pino';
import { parseConfig } from '../../shared/config/index.ts';
import { createPool } from '../../shared/db/pool.ts';
import { runWorker } from '../../shared/runtime/run-worker.ts';
import { createDistributedStorage } from '../../shared/storage/index.ts';
import { storagereplicationworker } from '../../workers/storagereplicationworker/index.ts';

const config = parseConfig(JSON.parse(process.env.QF_CONFIG ?? '{}') as Record<string, unknown>);
const db = createPool({ connectionString: process.env.QF_DATABASE_URL!, max: 4 });
const storage = await createDistributedStorage(config.quay);
// Without the reconciler's schedule: a sweep runs only when one is enqueued (sweep.test.ts).
const worker = await runWorker({ ...storagereplicationworker, schedule: undefined }, {
  config, services: { db, storage, config }, redis: { url: process.env.QF_REDIS_URL!, prefix: process.env.QF_PREFIX },
  log: pino({ level: 'warn' }), lease: { lockDurationMs: 2000, stalledIntervalMs: 1000 },
});
process.stdout.write(worker.disabled ? 'disabled\n' : 'ready\n');
