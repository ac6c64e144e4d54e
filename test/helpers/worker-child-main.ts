/**
 * One worker of `workers/<QF_WORKER>/` in its own process, so a test can SIGKILL it mid-job
 * (started through `spawnWorkerChild` in worker-child.ts). It gets the `db` and `config` services,
 * a short lease so another worker takes an orphaned job over quickly (QF_LEASE_MS, default 1000),
 * and prints `ready` once it consumes. Env: QF_WORKER, QF_DATABASE_URL, QF_REDIS_URL, QF_PREFIX,
 * QF_CONFIG (JSON of config.yaml keys).
 */
import { pino } from 'pino';
import { parseConfig } from '../../shared/config/index.ts';
import { createPool } from '../../shared/db/pool.ts';
import { runWorker } from '../../shared/runtime/run-worker.ts';
import type { WorkerDefinition, WorkerServices } from '../../shared/runtime/worker.ts';
import type { VersionedPayload } from '../../queues/contract.ts';

const name = process.env.QF_WORKER ?? '';
if (!/^[a-z][a-z0-9_-]*$/.test(name)) throw new Error(`QF_WORKER must name a folder under workers/, got ${JSON.stringify(name)}`);
const { default: definition } = await import(`../../workers/${name}/index.ts`) as { default: WorkerDefinition<VersionedPayload, WorkerServices & { config: unknown }> };
const leaseMs = Number(process.env.QF_LEASE_MS ?? 1000);
const config = parseConfig(JSON.parse(process.env.QF_CONFIG ?? '{}') as Record<string, unknown>);
const pool = createPool({ connectionString: process.env.QF_DATABASE_URL!, max: 2 });
await runWorker(definition, {
  config, services: { db: pool, config },
  redis: { url: process.env.QF_REDIS_URL!, prefix: process.env.QF_PREFIX },
  log: pino({ level: 'warn' }),
  lease: { lockDurationMs: leaseMs, stalledIntervalMs: leaseMs / 2 },
});
process.stdout.write('ready\n');
