/**
 * Metrics live in prom-client's default registry so any module can declare its own counters at
 * import time. Quay's common labels (`host`, `process_name`) are set once per process at boot with
 * `setProcessLabels`; they then appear on every sample, as in Quay.
 */
import os from 'node:os';
import client from 'prom-client';

export const registry = client.register;
export { client };

/** Sets Quay's common labels on every metric of this process and starts Node's default metrics once. */
export function setProcessLabels(processName: string, host = process.env.HOSTNAME ?? os.hostname()): void {
  registry.setDefaultLabels({ host, process_name: processName });
  if (!defaultMetricsStarted) {
    client.collectDefaultMetrics({ register: registry });
    defaultMetricsStarted = true;
  }
}
let defaultMetricsStarted = false;

/**
 * Returns the metric registered under `name`, or registers the one `create` builds. Lets modules
 * that may be imported more than once (tests, `all` mode) declare metrics without a clash.
 */
export function metric<T extends client.Metric<string>>(name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}
