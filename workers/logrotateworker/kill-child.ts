/**
 * Runs one rotation to the end in a process of its own, so that a test can SIGKILL it mid-run.
 * Test only.
 *
 *   node --import tsx workers/logrotateworker/kill-child.ts <db url> <storage dir> <cutoff ISO>
 */
import { parseConfig } from '../../shared/config/index.ts';
import { createPool } from '../../shared/db/pool.ts';
import { createDistributedStorage } from '../../shared/storage/distributed.ts';
import { rotateLogs } from './handler.ts';

const [url, dir, cutoff] = process.argv.slice(2);
const config = parseConfig({
  DISTRIBUTED_STORAGE_CONFIG: { local_us: ['LocalStorage', { storage_path: dir! }] }, DISTRIBUTED_STORAGE_PREFERENCE: ['local_us'],
  FEATURE_ACTION_LOG_ROTATION: true, ACTION_LOG_ARCHIVE_LOCATION: 'local_us', ACTION_LOG_ARCHIVE_PATH: 'actionlogarchive/',
});
const pool = createPool({ connectionString: url!, max: 2 });
const storage = await createDistributedStorage(config.quay);
console.log(JSON.stringify(await rotateLogs(pool, storage, config, { cutoff: new Date(cutoff!), deadlineMs: Date.now() + 600_000 })));
await storage.close();
await pool.end();
