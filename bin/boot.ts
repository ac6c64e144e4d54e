/**
 * Process boot shared by every command: one config parse (errors reported at once, exit 2), the
 * root logger, and the connections the command needs — Postgres from DB_URI or the embedded
 * server, Redis from REDIS_URL/BUILDLOGS_REDIS or the embedded redis-server.
 */
import { ConfigError, loadConfig, type Config } from '../shared/config/index.ts';
import { createLogger, type Logger } from '../shared/runtime/logger.ts';
import type { EmbeddedServer } from './embedded/postgres.ts';

export interface Booted {
  readonly config: Config;
  readonly log: Logger;
  /** Postgres URL in use (configured or embedded); empty when the command did not ask for Postgres. */
  readonly dbUri: string;
  /** Redis URL in use (configured or embedded); undefined when the command did not ask for Redis. */
  readonly redisUrl: string | undefined;
  /** Stops embedded servers this process started (last step of shutdown). */
  stopEmbedded(): Promise<void>;
}

/** Loads config or exits 2 with every error on stderr. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/**
 * Boots a process named `processName`. Without DB_URI (or REDIS_URL) the embedded servers are
 * used when `allowEmbedded`; pod commands pass false and fail with Quay's "DB_URI is required."
 */
export async function boot(processName: string, options: { redis: boolean; allowEmbedded: boolean; db?: boolean }): Promise<Booted> {
  const config = loadConfigOrExit();
  const log = createLogger({ name: processName });
  const embedded: EmbeddedServer[] = [];
  let dbUri = config.dbUri ?? '';
  if (!dbUri && options.db !== false) {
    if (!options.allowEmbedded) fail('DB_URI is required.');
    // Loaded only when needed: pods with DB_URI never touch the embedded binaries.
    const { startEmbeddedPostgres } = await import('./embedded/postgres.ts');
    const server = await startEmbeddedPostgres(config.dataDir, log);
    embedded.push(server);
    dbUri = server.url;
  }
  let redisUrl = config.redisUrl;
  if (options.redis && !redisUrl) {
    if (!options.allowEmbedded) fail('BUILDLOGS_REDIS is required (or set REDIS_URL).');
    const { startEmbeddedRedis } = await import('./embedded/redis.ts');
    const server = await startEmbeddedRedis(config.dataDir, log);
    embedded.push(server);
    redisUrl = server.url;
  }
  return {
    config, log, dbUri, redisUrl,
    async stopEmbedded() {
      for (const server of embedded.reverse()) await server.stop();
    },
  };
}

/** Prints one line to stderr and exits 2 (a usage or configuration error). */
export function fail(message: string): never {
  process.stderr.write(`quayfleet: ${message}\n`);
  process.exit(2);
}
