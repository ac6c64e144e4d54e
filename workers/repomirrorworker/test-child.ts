/**
 * A repomirrorworker process for the process-level tests (SIGKILL mid-sync, several replicas).
 * Env: QF_CONFIG (config.yaml keys as JSON), QF_DATABASE_URL, QF_REDIS_URL, QF_PREFIX,
 * QF_LEASE_MS. Prints `ready` once the worker runs; stops on SIGTERM.
 */
import { pino } from 'pino';
import { parseConfig } from '../../shared/config/index.ts';
import { createPool } from '../../shared/db/pool.ts';
import { runWorker } from '../../shared/runtime/run-worker.ts';
import { onShutdownSignal } from '../../shared/runtime/shutdown.ts';
import { createDistributedStorage } from '../../shared/storage/distributed.ts';
import { createRepoMirrorWorker } from './index.ts';

const log = pino({ level: process.env.QF_LOG_LEVEL ?? 'warn' });
const config = parseConfig(JSON.parse(process.env.QF_CONFIG ?? '{}') as Record<string, unknown>);
const db = createPool({ connectionString: process.env.QF_DATABASE_URL!, max: 4 });
const storage = await createDistributedStorage(config.quay);
const worker = await runWorker(createRepoMirrorWorker({ leaseMs: Number(process.env.QF_LEASE_MS ?? 2000) }), {
  config, services: { db, storage, config }, log,
  redis: { url: process.env.QF_REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: process.env.QF_PREFIX },
  lease: { lockDurationMs: 1000, stalledIntervalMs: 500 },
});
onShutdownSignal(async () => {
  if (!worker.disabled) await worker.stop(3000, { abortGraceMs: 1000 });
  await db.end();
}, log);
process.stdout.write('ready\n');
