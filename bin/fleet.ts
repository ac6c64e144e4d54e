/**
 * Composes a running process out of the pieces: the Postgres pool, the distributed storage, the
 * queue producer and gauges, the front end and/or workers, and the metrics/health server; and
 * tears them down in order on SIGTERM: stop taking HTTP requests and jobs, let active work finish
 * until the deadline, then close Redis, Postgres, storage and the embedded servers.
 */
import type { Cluster, Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { ensureLocations } from '../shared/db/blobs.ts';
import { createPool, type Pool } from '../shared/db/pool.ts';
import { diskPathsOf, redisPinger, workerHealthChecks, type HealthChecks } from '../shared/runtime/health.ts';
import { setProcessLabels } from '../shared/metrics/index.ts';
import { exportManagementState } from '../shared/runtime/management-state.ts';
import { startMetricsServer, type MetricsServer } from '../shared/runtime/metrics-server.ts';
import { createProducer, type Producer } from '../shared/runtime/producer.ts';
import { registerQueueGauges } from '../shared/runtime/queue-gauges.ts';
import { runWorker, type RunningWorker } from '../shared/runtime/run-worker.ts';
import { closeHttpWithin, onShutdownSignal } from '../shared/runtime/shutdown.ts';
import { startOutboxRelay, type OutboxRelay } from '../shared/runtime/outbox-relay.ts';
import { createDistributedStorage, type DistributedStorage } from '../shared/storage/distributed.ts';
import { storageTimeouts } from '../shared/storage/timeouts.ts';
import { SPEC_LOCATION } from '../shared/config/index.ts';
import type { FleetWorker } from '../workers/catalog.ts';
import type { FleetServices } from '../workers/services.ts';
import type { Booted } from './boot.ts';
import { portInUse } from './ports.ts';
import { tokenSecret } from './secrets.ts';

export interface FleetOptions {
  /** `process_name` label and logger name. */
  readonly processName: string;
  /** Serve the front end on config.httpPort. */
  readonly registry: boolean;
  readonly workers: readonly FleetWorker[];
  /** Apply migrations first (the embedded `all`; pods run `quayfleet migrate` instead). */
  readonly migrate: boolean;
  /** How long active jobs and requests get to finish on SIGTERM. */
  readonly shutdownDeadlineMs?: number;
}

/** A running fleet process; `stop()` is what SIGTERM calls. */
export interface Fleet {
  readonly http: FastifyInstance | undefined;
  readonly metrics: MetricsServer;
  /** Names of the workers that started (gated-off ones are absent). */
  readonly runningWorkers: readonly string[];
  stop(): Promise<void>;
}

const DEFAULT_SHUTDOWN_DEADLINE_MS = 25_000;
/** After the deadline: closing Redis, Postgres, storage and embedded servers; then the process exits regardless. */
const SHUTDOWN_CLEANUP_MS = 10_000;

/** The shutdown deadline: QUAYFLEET_SHUTDOWN_DEADLINE_SECONDS (set below the pod's grace period), else 25 s. */
export function shutdownDeadlineMs(env: NodeJS.ProcessEnv = process.env): number {
  const seconds = Number(env.QUAYFLEET_SHUTDOWN_DEADLINE_SECONDS);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_SHUTDOWN_DEADLINE_MS;
}

/** Starts the process described by `options`; resolves once everything listens. */
export async function startFleet(booted: Booted, options: FleetOptions): Promise<Fleet> {
  const { config, log } = booted;
  setProcessLabels(options.processName);
  exportManagementState(config.imageRegistry);
  if (config.imageRegistry.managementState !== 'Managed') {
    log.warn({ managementState: config.imageRegistry.managementState }, config.imageRegistry.managementState === 'Removed'
      ? 'managementState is Removed: the registry answers 503 ImageRegistryRemoved, only the GC workers run, and they prune metadata only'
      : 'managementState is Unmanaged: GC prunes metadata only; storage objects are kept');
  }
  // node-pg-migrate is loaded only here: pods run `quayfleet migrate` once, not in every process.
  if (options.migrate) await (await import('../shared/db/migrate.ts')).migrate(booted.dbUri);
  const db = createPool({
    connectionString: booted.dbUri, applicationName: `quayfleet-${options.processName}`, max: config.quay.DB_CONNECTION_ARGS.max_connections ?? 20,
    onConnectionLost: (error) => log.warn({ err: error }, 'database connection lost; the pool reconnects on next use'),
  });
  // Workers wait for storage longer than the front end, which answers 503 instead (shared/storage/timeouts.ts);
  // `all` gives its front end clients of its own with the front end's deadlines.
  const storageFor = (role: 'registry' | 'worker'): Promise<DistributedStorage> => createDistributedStorage(config.quay, {
    preferenceOverride: config.storagePreferenceOverride,
    timeouts: storageTimeouts(role, role === 'registry' ? config.quay.REGISTRY_STORAGE_TIMEOUT_SECONDS : config.quay.WORKER_STORAGE_TIMEOUT_SECONDS),
  });
  const storage = await storageFor(options.registry && options.workers.length === 0 ? 'registry' : 'worker');
  const frontStorage = options.registry && options.workers.length > 0 ? await storageFor('registry') : storage;
  await provisionSpecStorage(config, storage, log);
  await ensureLocations(db, storage.locations);
  const redisUrl = booted.redisUrl!;
  const producer = createProducer({ url: redisUrl });
  const unregisterGauges = registerQueueGauges(producer);
  const relay = await startOutboxRelay({ db, connectionString: booted.dbUri, producer, log });
  const pinger = redisPinger({ url: redisUrl }, log);

  const services: FleetServices = { db, storage, config, onOutboxWrite: () => relay.wake() };
  // QUAYFLEET_WORKER_CONCURRENCY sizes a worker pod; `all` keeps every worker's own concurrency.
  const running = await startWorkers(options.workers, booted, services, options.registry ? undefined : config.workerConcurrency);
  // OPS-1: under Removed the registry instance is gone; the front end answers 503 (registry/removed.ts).
  const removed = config.imageRegistry.managementState === 'Removed';
  const secret = options.registry && !removed ? tokenSecret(config, log, { persistInDataDir: !config.dbUri }) : undefined;
  const health = await healthChecks(config, db, pinger, options.registry ? frontStorage : storage, secret);
  const http = secret ? await startRegistry(booted, db, frontStorage, relay, health, secret, producer)
    : options.registry ? await startRemovedFrontEnd(booted) : undefined;
  const metrics = await startMetricsServer({ port: config.metricsPort, log, health })
    .catch(portInUse({ port: config.metricsPort, variable: 'QUAYFLEET_METRICS_PORT' }));
  log.info({ registry: options.registry ? config.httpPort : false, metricsPort: metrics.port, workers: running.map((w) => w.name) }, 'quayfleet is running');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= (async () => {
    const deadline = options.shutdownDeadlineMs ?? shutdownDeadlineMs();
    await Promise.all([http && closeHttpWithin(() => http.close(), http.server, deadline, log), ...running.map((w) => w.stop(deadline))]);
    await relay.stop();
    unregisterGauges();
    await producer.close();
    pinger.disconnect();
    await metrics.close();
    await db.end();
    await storage.close();
    if (frontStorage !== storage) await frontStorage.close();
    await booted.stopEmbedded();
  })());
  return { http, metrics, runningWorkers: running.map((w) => w.name), stop };
}

async function startWorkers(workers: readonly FleetWorker[], booted: Booted, services: FleetServices, concurrency: number | undefined): Promise<RunningWorker[]> {
  const running: RunningWorker[] = [];
  for (const definition of workers) {
    const result = await runWorker(definition, { config: booted.config, services, redis: { url: booted.redisUrl! }, log: booted.log, concurrency });
    if (!result.disabled) running.push(result);
  }
  return running;
}

async function startRegistry(booted: Booted, db: Pool, storage: DistributedStorage, relay: OutboxRelay, health: HealthChecks, secret: Uint8Array, queues: Producer): Promise<FastifyInstance> {
  // Imported here: a worker pod never loads the front end (Fastify, routes, auth, manifest parsers).
  const { buildRegistryApp } = await import('../registry/app.ts');
  const app = await buildRegistryApp({
    config: booted.config, db, storage, log: booted.log,
    tokenSecret: secret,
    // Publish outbox rows at once when this process wrote them; the relay's LISTEN covers the rest.
    onOutboxWrite: () => relay.wake(),
    health,
    queues,
  });
  await app.listen({ host: '0.0.0.0', port: booted.config.httpPort })
    .catch(portInUse({ port: booted.config.httpPort, variable: 'QUAYFLEET_HTTP_PORT' }));
  return app;
}

/** The front end under managementState Removed: every request answers 503 with the ImageRegistryRemoved condition. */
async function startRemovedFrontEnd(booted: Booted): Promise<FastifyInstance> {
  const { buildRemovedApp } = await import('../registry/removed.ts');
  const app = buildRemovedApp(booted.log);
  await app.listen({ host: '0.0.0.0', port: booted.config.httpPort })
    .catch(portInUse({ port: booted.config.httpPort, variable: 'QUAYFLEET_HTTP_PORT' }));
  return app;
}

/**
 * spec.storage under storage managementState Managed: the bucket (container) is created when it
 * does not exist, as the operator does; Unmanaged only checks that it exists, so a missing bucket
 * fails at start with its name instead of on the first push. Quay-style locations are left alone.
 */
export async function provisionSpecStorage(config: Booted['config'], storage: DistributedStorage, log: Booted['log']): Promise<void> {
  if (!config.imageRegistry.backend) return;
  const store = storage.store(SPEC_LOCATION);
  if (!store.ensureBucket) return;
  const outcome = await store.ensureBucket();
  log.info({ location: SPEC_LOCATION, driver: store.driverName, storageManagementState: config.imageRegistry.storageManagementState, outcome }, outcome === 'created' ? 'storage bucket created' : 'storage bucket exists');
}

/** The front end's Quay keys (registry/health.ts) when it runs here, else a worker's (database, redis, storage). */
async function healthChecks(config: Booted['config'], db: Pool, redis: Redis | Cluster, storage: DistributedStorage, secret: Uint8Array | undefined): Promise<HealthChecks> {
  const base = { db, redis, storage, diskPaths: diskPathsOf(config.quay.DISTRIBUTED_STORAGE_CONFIG), diskWarningThreshold: config.quay.DISKSPACE_HEALTH_WARNING_THRESHOLD };
  if (!secret) return workerHealthChecks(base);
  const { registryHealthChecks } = await import('../registry/health.ts');
  return registryHealthChecks({ ...base, config, tokenSecret: secret, selfUrl: `http://127.0.0.1:${config.httpPort}`, diskThreshold: config.quay.DISKSPACE_HEALTH_THRESHOLD });
}

/**
 * Runs `startFleet` and wires SIGTERM, SIGINT and SIGHUP to its orderly stop. The handlers are
 * installed before anything starts, so a signal during startup waits for startup and then stops
 * cleanly (and stops the embedded servers) instead of killing the process half-started.
 */
export async function runFleet(booted: Booted, options: FleetOptions): Promise<Fleet> {
  const starting = startFleet(booted, options);
  const hupListeners = process.listenerCount('SIGHUP');
  onShutdownSignal(async () => {
    const fleet = await starting.catch(() => undefined);
    if (fleet) await fleet.stop();
    else await booted.stopEmbedded();
  }, booted.log, { hardDeadlineMs: (options.shutdownDeadlineMs ?? shutdownDeadlineMs()) + SHUTDOWN_CLEANUP_MS });
  // A closed terminal (SIGHUP) stops the fleet as SIGTERM does, unless the handler covers it already.
  if (process.listenerCount('SIGHUP') === hupListeners) process.on('SIGHUP', () => process.kill(process.pid, 'SIGTERM'));
  booted.handOverSignals();
  return starting;
}

export type { Producer };
