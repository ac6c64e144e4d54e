/**
 * The quayfleet side of the registry benchmark, as its own process (so its peak RSS is its own):
 * the front end over LocalStorage in a temp directory and a freshly migrated database, with one
 * user. Env: BENCH_DB_URL, BENCH_STORAGE_DIR, BENCH_PORT. Prints `ready` when it listens.
 */
import { randomBytes } from 'node:crypto';
import { buildRegistryApp } from '../../registry/app.ts';
import { parseConfig } from '../../shared/config/index.ts';
import { createUserAccount } from '../../shared/db/accounts.ts';
import { migrate } from '../../shared/db/migrate.ts';
import { createPool, withTransaction } from '../../shared/db/pool.ts';
import { createLogger } from '../../shared/runtime/logger.ts';
import { createDistributedStorage } from '../../shared/storage/distributed.ts';

const dbUrl = process.env.BENCH_DB_URL!;
const port = Number(process.env.BENCH_PORT);
const config = parseConfig({
  SERVER_HOSTNAME: `127.0.0.1:${port}`,
  DISTRIBUTED_STORAGE_CONFIG: { default: ['LocalStorage', { storage_path: process.env.BENCH_STORAGE_DIR! }] },
  DISTRIBUTED_STORAGE_PREFERENCE: ['default'],
});
await migrate(dbUrl);
const db = createPool({ connectionString: dbUrl, max: 20, applicationName: 'quayfleet-bench' });
await withTransaction(db, (tx) => createUserAccount(tx, { username: 'bench', password: 'benchpassword' }));
const app = await buildRegistryApp({
  config, db, storage: await createDistributedStorage(config.quay), log: createLogger({ level: 'error' }), tokenSecret: randomBytes(32),
});
await app.listen({ host: '127.0.0.1', port });
console.log('ready');
process.on('SIGTERM', () => {
  void app.close().then(() => db.end()).then(() => process.exit(0));
});
