/**
 * Vitest global setup: every real server the suite needs must answer before any test runs.
 * Postgres and Redis are the machine's services; the storage servers are started here when absent.
 */
import { checkRedis, preparePostgresTemplate } from './servers/postgres-redis.ts';
import { startStorageServers } from './servers/storage.ts';

export default async function setup(): Promise<() => Promise<void>> {
  await Promise.all([preparePostgresTemplate(), checkRedis()]);
  const stopStorage = await startStorageServers();
  return async () => {
    await stopStorage();
  };
}
