/**
 * The image registry's management state as metrics (OPS-1, OPS-3), exported by every process:
 * `quayfleet_management_state{state}` (1 for the state in force) and, while the state is Removed,
 * OpenShift's ImageRegistryRemoved condition with its documented text, which the
 * `ImageRegistryRemoved` alert rule (deploy/prometheus/alerts.yaml) fires on.
 */
import { IMAGE_REGISTRY_REMOVED_MESSAGE, MANAGEMENT_STATES, type ImageRegistrySettings } from '../config/index.ts';
import { client, metric } from '../metrics/index.ts';

const state = metric('quayfleet_management_state', () => new client.Gauge({
  name: 'quayfleet_management_state',
  help: 'managementState of the image registry (spec.managementState): 1 for the state in force',
  labelNames: ['state'] as const,
}));

const condition = metric('quayfleet_image_registry_condition', () => new client.Gauge({
  name: 'quayfleet_image_registry_condition',
  help: 'OpenShift image registry conditions: 1 while the condition holds (ImageRegistryRemoved under managementState Removed), with its message',
  labelNames: ['condition', 'message'] as const,
}));

/** Sets both gauges from the process's settings. */
export function exportManagementState(settings: Pick<ImageRegistrySettings, 'managementState'>): void {
  for (const name of MANAGEMENT_STATES) state.labels({ state: name }).set(name === settings.managementState ? 1 : 0);
  condition.labels({ condition: 'ImageRegistryRemoved', message: IMAGE_REGISTRY_REMOVED_MESSAGE }).set(settings.managementState === 'Removed' ? 1 : 0);
}
