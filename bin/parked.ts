/**
 * OPS-1: under managementState Removed, a worker pod whose worker does not run (every worker but
 * the GC ones) stays up parked instead of exiting. A Deployment restarts a container whatever its
 * exit code, so exiting would crash-loop the pod for as long as the registry is Removed; and
 * unlike a feature flag, Removed is a runtime state the manifests cannot pause ahead of time.
 * Parked, the process opens no connection and takes no job. Its metrics port answers: every
 * health path 200 (the pod is doing what the state asks), with the reason under `data.parked`,
 * and `/metrics` exports the management state and the ImageRegistryRemoved condition. It rechecks
 * the config file and exits 0 once the state is no longer Removed, so the pod restarts into its
 * worker.
 */
import { loadConfig } from '../shared/config/index.ts';
import { recheckMs } from './degraded.ts';
import { setProcessLabels } from '../shared/metrics/index.ts';
import type { Logger } from '../shared/runtime/logger.ts';
import { exportManagementState } from '../shared/runtime/management-state.ts';
import { startMetricsServer, type MetricsServer } from '../shared/runtime/metrics-server.ts';

/** How a parked process runs. */
export interface ParkedOptions {
  readonly processName: string;
  readonly reason: string;
  readonly metricsPort: number;
  readonly log: Logger;
  /** Between rechecks of the config file (QUAYFLEET_DEGRADED_RECHECK_SECONDS, default 30 s). */
  readonly recheckMs?: number;
}

/** A parked process. */
export interface Parked {
  readonly metrics: MetricsServer;
  stop(): Promise<void>;
}

/** Parks the process until managementState leaves Removed; then it exits 0. */
export async function runParked(options: ParkedOptions): Promise<Parked> {
  const { log } = options;
  setProcessLabels(options.processName);
  exportManagementState({ managementState: 'Removed' });
  log.info({ worker: options.processName, reason: options.reason }, 'worker parked: it runs again when managementState is no longer Removed');
  const metrics = await startMetricsServer({
    port: options.metricsPort, log, health: { instance: {}, endtoend: {}, warning: {} }, healthData: () => ({ parked: options.reason }),
  });
  const recheck = setInterval(() => {
    let state: string;
    try {
      state = loadConfig().imageRegistry.managementState;
    } catch (error) {
      // A config being edited can be invalid for a moment; the pod stays parked until it is whole.
      log.warn({ err: error }, 'config recheck failed; staying parked');
      return;
    }
    if (state === 'Removed') return;
    log.info({ managementState: state }, 'managementState is no longer Removed; exiting so the worker starts');
    void stop().then(() => process.exit(0));
  }, options.recheckMs ?? recheckMs());
  recheck.unref();
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= (async () => {
    clearInterval(recheck);
    await metrics.close();
  })());
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => void stop().then(() => process.exit(0)));
  }
  return { metrics, stop };
}
