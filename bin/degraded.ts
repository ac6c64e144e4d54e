/**
 * OPS-4: a pod whose configuration is incomplete or wrong starts degraded instead of exiting (an
 * exit 2 restarts the container with nothing but a line in a log nobody reads). It serves the
 * metrics port only: `/health/instance` and `/health/endtoend` answer 503 with `config: false`
 * and Quay's `{FieldGroup, Tags, Message}` list under `data.config_errors` (warnings under
 * `data.config_warnings`), `/health/live` answers 200 so the liveness probe keeps the pod, `/metrics` exports
 * `quayfleet_config_errors`, and the log repeats the list every few minutes. It runs no worker
 * and serves no registry API. When the mounted config.yaml changes into a valid one, it exits 0 so
 * the pod restarts with it (environment changes restart the pod anyway).
 */
import { client, metric, setProcessLabels } from '../shared/metrics/index.ts';
import type { ValidationError } from '../shared/config/index.ts';
import { logConfigWarnings } from './boot.ts';
import type { HealthCheck } from '../shared/runtime/health.ts';
import type { Logger } from '../shared/runtime/logger.ts';
import { startMetricsServer, type MetricsServer } from '../shared/runtime/metrics-server.ts';

const configErrors = metric('quayfleet_config_errors', () => new client.Gauge({
  name: 'quayfleet_config_errors',
  help: 'configuration errors that keep this process degraded (it runs no worker and serves no registry API until they are fixed)',
}));

/** How a degraded process runs. */
export interface DegradedOptions {
  readonly processName: string;
  readonly errors: readonly ValidationError[];
  /** Warnings found beside the errors: logged at level warn, one line each, and listed under `data.config_warnings`. */
  readonly warnings?: readonly ValidationError[];
  readonly metricsPort: number;
  readonly log: Logger;
  /** Re-validates the configuration; an empty list means it is now complete. */
  readonly recheck?: () => readonly ValidationError[];
  /** Between rechecks (QUAYFLEET_DEGRADED_RECHECK_SECONDS, default 30 s). */
  readonly recheckMs?: number;
  /** How often the errors are logged again. */
  readonly relogMs?: number;
  /** Called once the configuration became valid (default: exit 0 so the pod restarts with it). */
  readonly onValid?: () => void;
}

/** A running degraded process. */
export interface Degraded {
  readonly metrics: MetricsServer;
  stop(): Promise<void>;
}

/** Starts the degraded process: metrics and health with the errors, a log line, and the recheck. */
export async function runDegraded(options: DegradedOptions): Promise<Degraded> {
  const { log } = options;
  setProcessLabels(options.processName);
  let errors = options.errors;
  configErrors.set(errors.length);
  const logErrors = (): void => {
    log.error({ configErrors: errors }, `configuration incomplete: ${errors.map((e) => e.Message).join('; ')}; running degraded (no worker, no registry API) until it is fixed`);
  };
  logErrors();
  logConfigWarnings(options.warnings ?? [], log);
  const failing: HealthCheck = async () => false;
  const checks = { config: failing };
  const metrics = await startMetricsServer({
    port: options.metricsPort, log,
    health: { instance: checks, endtoend: checks, warning: {} },
    healthData: () => ({ config_errors: errors, ...(options.warnings?.length ? { config_warnings: options.warnings } : {}) }),
  });
  const relog = setInterval(logErrors, options.relogMs ?? 5 * 60_000);
  const recheck = options.recheck && setInterval(() => {
    try {
      errors = options.recheck!();
    } catch (error) {
      log.warn({ err: error }, 'config recheck failed');
      return;
    }
    configErrors.set(errors.length);
    if (errors.length > 0) return;
    log.info('configuration is now complete; exiting so the process restarts with it');
    void stop().then(options.onValid ?? (() => process.exit(0)));
  }, options.recheckMs ?? recheckMs());
  relog.unref();
  recheck?.unref();
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= (async () => {
    clearInterval(relog);
    if (recheck) clearInterval(recheck);
    await metrics.close();
  })());
  return { metrics, stop };
}

/** Between rechecks of the config file: QUAYFLEET_DEGRADED_RECHECK_SECONDS, default 30 s (also the parked process's). */
export function recheckMs(env: NodeJS.ProcessEnv = process.env): number {
  const seconds = Number(env.QUAYFLEET_DEGRADED_RECHECK_SECONDS);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 30_000;
}
