/**
 * A worker process for the runtime's process-level tests (SIGKILL, SIGTERM, disabled gate).
 * Env: QF_MODE (`work` | `graceful` | `disabled`), QF_PREFIX, QF_REDIS_URL, QF_DATABASE_URL.
 * Prints `started <jobId>` on stdout when a job begins; in `work` mode the job never ends by
 * itself, in `graceful` mode it ends when its abort signal fires.
 */
import { pino } from 'pino';
import { createPool } from '../../db/pool.ts';
import { runWorker } from '../run-worker.ts';
import { onShutdownSignal } from '../shutdown.ts';
import { defineWorker } from '../worker.ts';
import { testConfig, testQueue } from './index.ts';

const mode = process.env.QF_MODE ?? 'work';
const log = pino({ level: 'info' });
const pool = createPool({ connectionString: process.env.QF_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', max: 1 });

const definition = defineWorker({
  name: 'childworker',
  queue: testQueue('childqueue'),
  concurrency: 1,
  gate: () => (mode === 'disabled' ? { enabled: false, reason: 'FEATURE_TEST is off' } : { enabled: true, reason: 'FEATURE_TEST is on' }),
  handler: async (_payload, ctx) => {
    process.stdout.write(`started ${ctx.job.id}\n`);
    await new Promise<void>((_resolve, reject) => {
      if (mode === 'graceful') ctx.signal.addEventListener('abort', () => reject(new Error('aborted')));
    });
  },
});

const starting = runWorker(definition, {
  config: testConfig(),
  services: { db: pool },
  redis: { url: process.env.QF_REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: process.env.QF_PREFIX },
  log,
  lease: { lockDurationMs: 1000, stalledIntervalMs: 500 },
});
// Wired before the worker can take a job, so a SIGTERM right after the first job starts is handled.
const removeSignalHandlers = onShutdownSignal(async () => {
  const worker = await starting;
  if (!worker.disabled) await worker.stop(3000, { abortGraceMs: 1000 });
  await pool.end();
}, log);
if ((await starting).disabled) {
  // Nothing else was opened: closing the pool leaves the event loop empty and the process exits 0.
  removeSignalHandlers();
  await pool.end();
}
