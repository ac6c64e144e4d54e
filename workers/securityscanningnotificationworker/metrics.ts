/** Security notification metrics: Clair pages processed, and the events they produced. */
import { client, metric } from '../../shared/metrics/index.ts';

/** Clair notification pages fetched and fanned out. */
export const pagesProcessed = metric('quayfleet_secscan_notification_pages_total', () => new client.Counter({
  name: 'quayfleet_secscan_notification_pages_total',
  help: 'Clair v4 notification pages processed by the securityscanningnotificationworker',
}));

/** vulnerability_found occurrences (repository, manifest, vulnerability) raised from Clair notifications. */
export const vulnerabilityEvents = metric('quayfleet_secscan_vulnerability_events_total', () => new client.Counter({
  name: 'quayfleet_secscan_vulnerability_events_total',
  help: 'vulnerability_found events raised from Clair v4 notifications (one per repository, manifest and vulnerability)',
}));

/** Clair notifications finished, by outcome (`done`, `gone` when Clair answered 404). */
export const notificationsHandled = metric('quayfleet_secscan_notifications_total', () => new client.Counter({
  name: 'quayfleet_secscan_notifications_total',
  help: 'Clair v4 notifications handled, by outcome (done, gone)',
  labelNames: ['outcome'],
}));
