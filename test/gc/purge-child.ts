/**
 * Runs a purge in its own process so a test can SIGKILL it mid-way. argv: database URL, storage
 * config JSON, "repository" | "namespace", target id, batch size. Prints "progress" lines.
 */
import pg from 'pg';
import { createPool } from '../../shared/db/pool.ts';
import { runNamespacePurge, runRepositoryPurge } from '../../shared/db/gc/run.ts';
import { createDistributedStorage } from '../../shared/storage/distributed.ts';

const [url, storageConfig, kind, id, batch] = process.argv.slice(2);
const pool = createPool({ connectionString: url!, max: 4 });
// Each query waits a little first, so the parent's SIGKILL lands mid-way even on a loaded machine.
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
(pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = async function (this: unknown, ...args: unknown[]) {
  await new Promise((resolve) => setTimeout(resolve, 3));
  return query.apply(this, args);
};
const config = JSON.parse(storageConfig!) as Record<string, [string, Record<string, unknown>]>;
const storage = await createDistributedStorage({ DISTRIBUTED_STORAGE_CONFIG: config, DISTRIBUTED_STORAGE_PREFERENCE: Object.keys(config) });
const listener = {
  rowsDeleted: (table: string, n: number) => process.stdout.write(`progress ${table} ${n}\n`),
  objectsDeleted: () => undefined, repositoryPurged: () => undefined, namespacePurged: () => undefined,
};
const run = kind === 'namespace' ? runNamespacePurge : runRepositoryPurge;
const outcome = await run(pool, storage, Number(id), { batchSize: Number(batch), listener });
process.stdout.write(`done ${JSON.stringify(outcome.locked && outcome.value.purge.done)}\n`);
await pool.end();
