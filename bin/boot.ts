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
  /**
   * Until called, SIGTERM, SIGINT and SIGHUP stop the embedded servers this process started and
   * exit; a long-running process calls it once its own orderly shutdown handles the signals.
   */
  handOverSignals(): void;
}

/** Which embedded servers a command may use when DB_URI or Redis is not configured. */
export interface EmbeddedPolicy {
  /** Start them (or reuse running ones): `all` and the one-shot admin commands. */
  readonly allowEmbedded: boolean;
  /**
   * Without allowEmbedded: use the ones a running `npm start` (`quayfleet all`) serves, never
   * start them; when none runs, fail saying what to set. `worker <name>` and `registry`.
   */
  readonly reuseEmbedded?: boolean;
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
 * started when `allowEmbedded`, reused when `reuseEmbedded` and one runs; otherwise the process
 * fails with Quay's "DB_URI is required." and what to set.
 */
export async function boot(processName: string, options: EmbeddedPolicy & { redis: boolean; db?: boolean }): Promise<Booted> {
  const config = loadConfigOrExit();
  const log = createLogger({ name: processName });
  const embedded: EmbeddedServer[] = [];
  const stopEmbedded = async (): Promise<void> => {
    for (const server of embedded.splice(0).reverse()) await server.stop();
  };
  const releaseSignals = stopEmbeddedOnSignal(stopEmbedded, log);
  let dbUri = config.dbUri ?? '';
  if (!dbUri && options.db !== false) {
    // Loaded only when needed: pods with DB_URI never touch the embedded binaries.
    const postgres = await import('./embedded/postgres.ts');
    if (options.allowEmbedded) {
      const server = await postgres.startEmbeddedPostgres(config.dataDir, log);
      embedded.push(server);
      dbUri = server.url;
    } else {
      dbUri = (options.reuseEmbedded ? await postgres.runningEmbeddedPostgres() : undefined)
        ?? fail(`DB_URI is required. Set DB_URI=postgresql://USER:PASSWORD@HOST:5432/quay (or DB_URI in config.yaml)${options.reuseEmbedded
          ? `; without it this command uses the embedded Postgres of a running \`npm start\` (${postgres.EMBEDDED_POSTGRES_ADDRESS}), and none answers there.` : '.'}`);
    }
  }
  let redisUrl = config.redisUrl;
  if (options.redis && !redisUrl) {
    const redis = await import('./embedded/redis.ts');
    if (options.allowEmbedded) {
      const server = await redis.startEmbeddedRedis(config.dataDir, log);
      embedded.push(server);
      redisUrl = server.url;
    } else {
      redisUrl = (options.reuseEmbedded ? await redis.runningEmbeddedRedis() : undefined)
        ?? fail(`BUILDLOGS_REDIS is required (or set REDIS_URL=redis://HOST:6379)${options.reuseEmbedded
          ? `; without it this command uses the embedded Redis of a running \`npm start\` (${redis.EMBEDDED_REDIS_ADDRESS}), and none answers there.` : '.'}`);
    }
  }
  return { config, log, dbUri, redisUrl, stopEmbedded, handOverSignals: releaseSignals };
}

/**
 * While a command boots or runs without an orderly shutdown of its own, a signal stops the
 * embedded servers it started and exits 128 + the signal number, so none outlives it. Returns
 * the function that removes the handlers.
 */
function stopEmbeddedOnSignal(stopEmbedded: () => Promise<void>, log: Logger): () => void {
  const signals = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
  const handler = (signal: keyof typeof signals): void => {
    log.info({ signal }, 'stopping');
    void stopEmbedded().finally(() => process.exit(128 + signals[signal]));
  };
  for (const signal of Object.keys(signals) as (keyof typeof signals)[]) process.on(signal, handler);
  return () => {
    for (const signal of Object.keys(signals) as (keyof typeof signals)[]) process.off(signal, handler);
  };
}

/** Prints one line to stderr and exits 2 (a usage or configuration error). */
export function fail(message: string): never {
  process.stderr.write(`quayfleet: ${message}\n`);
  process.exit(2);
}
