/**
 * Process boot shared by every command: one config parse (errors reported at once, exit 2), the
 * root logger, and the connections the command needs — Postgres from DB_URI or the embedded
 * server, Redis from REDIS_URL/BUILDLOGS_REDIS or the embedded redis-server.
 */
import {
  ConfigError, loadConfig, redactConfig, SPEC_LOCATION, toValidationErrors, type Config, type ConfigIssue, type ValidationError,
} from '../shared/config/index.ts';
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
  /**
   * A pod (`registry`, `worker <name>`): without DB_URI or Redis (and no embedded server to
   * reuse), throw `IncompleteConfigError` for the caller to run degraded, instead of exiting.
   */
  readonly degradeWhenIncomplete?: boolean;
  /** Start them (or reuse running ones): `all` and the one-shot admin commands. */
  readonly allowEmbedded: boolean;
  /**
   * Without allowEmbedded: use the ones a running `npm start` (`quayfleet all`) serves, never
   * start them; when none runs, fail saying what to set. `worker <name>` and `registry`.
   */
  readonly reuseEmbedded?: boolean;
}

/** What keeps a pod from starting: the issues in Quay's words, for the degraded process to report. */
export class IncompleteConfigError extends Error {
  /** `hint`: what to set, in the operator's terms (logged beside Quay's messages). */
  constructor(readonly issues: ConfigIssue[], readonly hint?: string) {
    super(issues.map((i) => i.message).join('; '));
    this.name = 'IncompleteConfigError';
  }
}

/**
 * What a valid config still cannot run as `processName`: emptyDir storage is one volume per pod,
 * so only `quayfleet all` (front end and workers in one process) may use it.
 */
export function processIssues(config: Config, processName: string): ConfigIssue[] {
  if (config.imageRegistry.backend !== 'emptyDir' || processName === 'all') return [];
  return [{ key: 'spec.storage.emptyDir', message: `spec.storage.emptyDir cannot serve the ${processName} pod: every pod has its own emptyDir, so the front end and the workers would not see each other's blobs; run quayfleet all with one replica, or use pvc (ReadWriteMany) or object storage` }];
}

/** Logs each warning on a line of its own at level warn (errors are logged at level error), with its field group and keys. */
export function logConfigWarnings(warnings: readonly ValidationError[], log: Logger): void {
  for (const warning of warnings) log.warn({ fieldGroup: warning.FieldGroup, keys: warning.Tags, configWarning: true }, `configuration warning: ${warning.Message}`);
}

/** Logs the config's warnings and how spec.storage was mapped (a generated bucket name shows here). */
export function logConfigNotes(config: Config, log: Logger): void {
  logConfigWarnings(toValidationErrors(config.warnings), log);
  if (config.imageRegistry.backend) {
    const [driver, params] = config.quay.DISTRIBUTED_STORAGE_CONFIG[SPEC_LOCATION]!;
    log.info({ backend: config.imageRegistry.backend, location: SPEC_LOCATION, driver, params: redactConfig(params), managementState: config.imageRegistry.managementState, storageManagementState: config.imageRegistry.storageManagementState }, 'spec.storage mapped to a storage location');
  }
}

/** Loads config or exits 2 with every error on stderr. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      for (const warning of toValidationErrors(error.warnings)) process.stderr.write(`warning: ${warning.FieldGroup}: ${warning.Message}\n`);
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
  const incomplete = processIssues(config, processName);
  if (incomplete.length > 0) {
    if (options.degradeWhenIncomplete) throw new IncompleteConfigError(incomplete);
    fail(incomplete[0]!.message);
  }
  logConfigNotes(config, log);
  const embedded: EmbeddedServer[] = [];
  const stopEmbedded = async (): Promise<void> => {
    for (const server of embedded.splice(0).reverse()) await server.stop();
  };
  const releaseSignals = stopEmbeddedOnSignal(stopEmbedded, log);
  try {
    return await connect(config, log, options, embedded, stopEmbedded, releaseSignals);
  } catch (error) {
    // The degraded process that follows handles signals itself (nothing embedded was started).
    if (error instanceof IncompleteConfigError) releaseSignals();
    throw error;
  }
}

/** How a missing connection is named, asked for and replaced by an embedded server. */
interface EmbeddedKind {
  readonly name: string;
  readonly key: 'DB_URI' | 'BUILDLOGS_REDIS';
  /** What to set, in the hint of a degraded pod. */
  readonly hint: string;
  /** The error when the command cannot go on without it. */
  readonly required: string;
}
const EMBEDDED_POSTGRES: EmbeddedKind = {
  name: 'Postgres', key: 'DB_URI',
  hint: 'set DB_URI=postgresql://USER:PASSWORD@HOST:5432/quay (or DB_URI in config.yaml)',
  required: 'DB_URI is required. Set DB_URI=postgresql://USER:PASSWORD@HOST:5432/quay (or DB_URI in config.yaml)',
};
const EMBEDDED_REDIS: EmbeddedKind = {
  name: 'Redis', key: 'BUILDLOGS_REDIS',
  hint: 'set REDIS_URL=redis://HOST:6379 (or BUILDLOGS_REDIS in config.yaml)',
  required: 'BUILDLOGS_REDIS is required (or set REDIS_URL=redis://HOST:6379)',
};
/** One embedded server's module, as `connect` uses it. */
interface EmbeddedModule {
  start(dataDir: string, log: Logger): Promise<EmbeddedServer>;
  running(): Promise<string | undefined>;
  readonly address: string;
}

async function connect(
  config: Config, log: Logger, options: EmbeddedPolicy & { redis: boolean; db?: boolean }, embedded: EmbeddedServer[],
  stopEmbedded: () => Promise<void>, releaseSignals: () => void,
): Promise<Booted> {
  // Loaded only when needed: pods with DB_URI and REDIS_URL never touch the embedded binaries.
  const resolve = async (kind: EmbeddedKind, load: () => Promise<EmbeddedModule>): Promise<string> => {
    const server = await load();
    if (options.allowEmbedded) {
      const started = await server.start(config.dataDir, log);
      embedded.push(started);
      return started.url;
    }
    const without = options.reuseEmbedded
      ? `; without it this command uses the embedded ${kind.name} of a running \`npm start\` (${server.address}), and none answers there` : '';
    return (options.reuseEmbedded ? await server.running() : undefined)
      ?? (options.degradeWhenIncomplete ? incompleteRedisOrDb(config, kind.key, `${kind.hint}${without}`) : undefined)
      ?? fail(`${kind.required}${without}.`);
  };
  const dbUri = config.dbUri || (options.db === false ? '' : await resolve(EMBEDDED_POSTGRES, async () => {
    const m = await import('./embedded/postgres.ts');
    return { start: m.startEmbeddedPostgres, running: m.runningEmbeddedPostgres, address: m.EMBEDDED_POSTGRES_ADDRESS };
  }));
  const redisUrl = config.redisUrl || (options.redis ? await resolve(EMBEDDED_REDIS, async () => {
    const m = await import('./embedded/redis.ts');
    return { start: m.startEmbeddedRedis, running: m.runningEmbeddedRedis, address: m.EMBEDDED_REDIS_ADDRESS };
  }) : undefined);
  return { config, log, dbUri, redisUrl, stopEmbedded, handOverSignals: releaseSignals };
}

/** Throws IncompleteConfigError with every connection the config lacks (Quay's messages). */
function incompleteRedisOrDb(config: Config, first: 'DB_URI' | 'BUILDLOGS_REDIS', hint: string): never {
  throw new IncompleteConfigError(missingConnections(config, first), hint);
}

/** Quay's errors for the connections a pod needs and the config does not give. */
export function missingConnections(config: Config, ...known: ('DB_URI' | 'BUILDLOGS_REDIS')[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (known.includes('DB_URI') || !config.dbUri) issues.push({ key: 'DB_URI', message: 'DB_URI is required.' });
  if (known.includes('BUILDLOGS_REDIS') || !config.redisUrl) issues.push({ key: 'BUILDLOGS_REDIS', message: 'BUILDLOGS_REDIS is required' });
  return issues;
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
