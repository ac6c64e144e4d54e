/**
 * Runs the abandoned-session cleanup in its own process so a test can SIGKILL it mid-batch.
 * argv: database URL, storage config JSON, batch size. Prints "batch <sessions>" after each
 * committed batch and "done <sessions>" at the end. Each batch's COMMIT waits 3 s, after its
 * storage work, so the parent can kill it between the two.
 */
import pg from 'pg';
import { createPool } from '../../shared/db/pool.ts';
import { createDistributedStorage } from '../../shared/storage/distributed.ts';
import { cancelAbandonedSessions } from '../../workers/chunkcleanupworker/sessions.ts';

const [url, storageConfig, batch] = process.argv.slice(2);
const pool = createPool({ connectionString: url!, max: 2 });
// Each query waits a little first, and each COMMIT 3 s, so the parent's SIGKILL lands mid-batch.
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
(pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = async function (this: unknown, ...args: unknown[]) {
  await new Promise((resolve) => setTimeout(resolve, args[0] === 'COMMIT' ? 3000 : 20));
  return query.apply(this, args);
};
const config = JSON.parse(storageConfig!) as Record<string, [string, Record<string, unknown>]>;
const storage = await createDistributedStorage({ DISTRIBUTED_STORAGE_CONFIG: config, DISTRIBUTED_STORAGE_PREFERENCE: Object.keys(config) });
const done = await cancelAbandonedSessions(pool, storage, {
  nowMs: Date.now(), thresholdMs: 2 * 86_400_000, batchSize: Number(batch),
  onBatch: (result) => process.stdout.write(`batch ${result.sessions}\n`),
});
process.stdout.write(`done ${done.sessions}\n`);
await pool.end();
