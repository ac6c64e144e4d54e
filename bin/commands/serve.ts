/**
 * The long-running commands: `registry`, `worker <name>` and `all`. Pods run `registry` or
 * `worker <name>` with DB_URI and Redis configured; without them, these two use the embedded
 * Postgres and Redis of a running `npm start`. `all` (what `npm start` runs) starts the embedded
 * servers itself when needed and applies migrations.
 */
import type { Command } from 'commander';
import type { Config } from '../../shared/config/index.ts';
import { WORKER_NAMES, loadPod, loadWorker } from '../../workers/catalog.ts';
import {
  boot, fail, IncompleteConfigError, loadConfigOrExit, missingConnections, processIssues, type Booted, type EmbeddedPolicy,
} from '../boot.ts';
import { ConfigError, loadConfig, storageLocationIssues, toValidationErrors, type ConfigIssue, type ValidationError } from '../../shared/config/index.ts';
import { storageParamIssues } from '../../shared/storage/drivers/index.ts';
import { createLogger } from '../../shared/runtime/logger.ts';
import { gateOf } from '../../shared/runtime/worker.ts';
import type { FleetOptions } from '../fleet.ts';
import { launchedByNpm, shutDownWithParent } from '../parent-watch.ts';
import { assertPortFree, PortInUseError, type ListenPort } from '../ports.ts';

/** The ports a process listens on: the front end's (when it runs one) and the metrics server's. */
function listenPorts(config: Config, registry: boolean): ListenPort[] {
  const metrics: ListenPort = { port: config.metricsPort, variable: 'QUAYFLEET_METRICS_PORT' };
  return registry ? [{ port: config.httpPort, variable: 'QUAYFLEET_HTTP_PORT', host: '0.0.0.0' }, metrics] : [metrics];
}

/** Fails with the port and its variable (exit 2) when a port is taken, before anything starts. */
async function checkPorts(registry: boolean): Promise<void> {
  for (const listen of listenPorts(loadConfigOrExit(), registry)) {
    await assertPortFree(listen).catch((error: unknown) => {
      if (error instanceof PortInUseError) fail(error.message);
      throw error;
    });
  }
}

/** Runs the fleet; a port taken after the check stops what started and fails as the check does. */
async function run(booted: Booted, options: FleetOptions): Promise<void> {
  const { runFleet } = await import('../fleet.ts');
  try {
    await runFleet(booted, options);
  } catch (error) {
    if (!(error instanceof PortInUseError)) throw error;
    await booted.stopEmbedded().catch(() => undefined);
    fail(error.message);
  }
}

/**
 * The config of a pod, or undefined once the process runs degraded (OPS-4): wrong or incomplete
 * configuration keeps the pod up, reporting the errors on its metrics port, instead of exiting.
 */
async function podConfigOrDegraded(processName: string): Promise<Config | undefined> {
  try {
    const config = loadConfig();
    const issues = [...processIssues(config, processName), ...locationIssues(config)];
    if (issues.length === 0) return config;
    await degrade(processName, toValidationErrors(issues), config.metricsPort, undefined, toValidationErrors(config.warnings));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    await degrade(processName, toValidationErrors(error.issues), metricsPortOf(process.env), undefined, toValidationErrors(error.warnings));
  }
  return undefined;
}

/** Boots a pod, or runs it degraded when a connection it needs is not configured. */
async function bootPod(processName: string, policy: EmbeddedPolicy & { redis: boolean }): Promise<Booted | undefined> {
  try {
    return await boot(processName, { ...policy, degradeWhenIncomplete: true });
  } catch (error) {
    if (!(error instanceof IncompleteConfigError)) throw error;
    await degrade(processName, toValidationErrors(error.issues), loadConfigOrExit().metricsPort, error.hint);
    return undefined;
  }
}

/** Runs the degraded process; it rechecks the config file and exits 0 once it is complete. */
async function degrade(processName: string, errors: ValidationError[], metricsPort: number, hint?: string, warnings: ValidationError[] = []): Promise<void> {
  const { runDegraded } = await import('../degraded.ts');
  const log = createLogger({ name: processName });
  if (hint) log.error(hint);
  const degraded = await runDegraded({
    processName, errors, warnings, metricsPort, log,
    recheck: () => {
      try {
        const config = loadConfig();
        return toValidationErrors([...processIssues(config, processName), ...locationIssues(config), ...(config.dbUri && config.redisUrl ? [] : missingConnections(config))]);
      } catch (error) {
        if (error instanceof ConfigError) return toValidationErrors(error.issues);
        throw error;
      }
    },
  });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => void degraded.stop().then(() => process.exit(0)));
  }
}

/** Each storage location's driver and parameters, as `config validate` checks them. */
const locationIssues = (config: Config): ConfigIssue[] => storageLocationIssues(config, storageParamIssues);

/** QUAYFLEET_METRICS_PORT when it is a port, else Quay's 9091 (the config that would say is broken). */
function metricsPortOf(env: NodeJS.ProcessEnv): number {
  const port = Number(env.QUAYFLEET_METRICS_PORT);
  return Number.isInteger(port) && port >= 0 && port <= 65535 && env.QUAYFLEET_METRICS_PORT?.trim() ? port : 9091;
}

/** Registers `registry`, `worker <name>` and `all`. */
export function registerServeCommands(program: Command): void {
  program
    .command('registry')
    .description('run the front end: the OCI registry API (/v2), token auth and the Quay API (/api/v1)')
    .action(async () => {
      if (!await podConfigOrDegraded('registry')) return;
      await checkPorts(true);
      const booted = await bootPod('registry', { redis: true, allowEmbedded: false, reuseEmbedded: true });
      if (!booted) return;
      await run(booted, { processName: 'registry', registry: true, workers: [], migrate: false });
    });

  program
    .command('worker')
    .description('run exactly one worker type')
    .argument('<name>', `one of: ${WORKER_NAMES.join(', ')}`)
    .action(async (name: string) => {
      // Only this worker's module graph is loaded (and its companions' below), never the others'.
      const definition = await loadWorker(name);
      if (!definition) fail(`unknown worker "${name}"; known workers: ${WORKER_NAMES.join(', ')}`);
      const config = await podConfigOrDegraded(name);
      if (!config) return;
      // A disabled worker exits 0 before opening any connection; the manifests hold it at 0
      // replicas. Under managementState Removed it parks instead (bin/parked.ts): that state
      // changes at run time, and an exiting pod would crash-loop until it changes back.
      const gate = gateOf(definition, config);
      if (gate && !gate.enabled && config.imageRegistry.managementState === 'Removed') {
        const { runParked } = await import('../parked.ts');
        await checkPorts(false);
        await runParked({ processName: name, reason: gate.reason, metricsPort: config.metricsPort, log: createLogger({ name }) });
        return;
      }
      if (gate && !gate.enabled) {
        createLogger({ name }).info({ worker: name, reason: gate.reason }, 'worker disabled; exiting');
        return;
      }
      await checkPorts(false);
      const booted = await bootPod(name, { redis: true, allowEmbedded: false, reuseEmbedded: true });
      if (!booted) return;
      await run(booted, { processName: name, registry: false, workers: await loadPod(definition.name), migrate: false });
    });

  program
    .command('all')
    .description('run the front end and every enabled worker in one process (development, small installs)')
    .action(async () => {
      await checkPorts(true);
      if (launchedByNpm()) shutDownWithParent();
      const booted = await boot('all', { redis: true, allowEmbedded: true });
      const { WORKERS } = await import('../../workers/index.ts');
      await run(booted, { processName: 'all', registry: true, workers: Object.values(WORKERS), migrate: true });
    });
}
