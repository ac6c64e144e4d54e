/**
 * The registry's push and pull metrics, with Quay's names and labels (seed MET-P1..P4), so Quay
 * dashboards keep working. `protocol` is always `v2` (quayfleet has no v1 API).
 */
import { client, metric } from '../shared/metrics/index.ts';

/** Manifest pulls (GET) by reference kind (`tag` or `manifest`) and HTTP status. */
export const imagePulls = metric('quay_registry_image_pulls_total', () => new client.Counter({
  name: 'quay_registry_image_pulls_total',
  help: 'number of images that have been downloaded via the registry',
  labelNames: ['protocol', 'ref', 'status'] as const,
}));

/** Estimated bytes pulled: the compressed layer sizes of every manifest served by GET. */
export const imagePulledBytes = metric('quay_registry_image_pulled_estimated_bytes_total', () => new client.Counter({
  name: 'quay_registry_image_pulled_estimated_bytes_total',
  help: 'number of bytes that have been downloaded via the registry',
  labelNames: ['protocol'] as const,
}));

/** Manifest pushes (PUT) by HTTP status and manifest media type. */
export const imagePushes = metric('quay_registry_image_pushes_total', () => new client.Counter({
  name: 'quay_registry_image_pushes_total',
  help: 'number of images that have been uploaded via the registry',
  labelNames: ['protocol', 'pstatus', 'pmedia_type'] as const,
}));

/** Blob bytes received by uploads, counted as they stream in. */
export const imagePushedBytes = metric('quay_registry_image_pushed_bytes_total', () => new client.Counter({
  name: 'quay_registry_image_pushed_bytes_total',
  help: 'number of bytes pushed to the registry',
}));
