/** The notificationworker: delivers repository and namespace notification events (queue `notification`). */
import { notification, type NotificationPayload } from '../../queues/notification.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { handleNotification, type NotificationServices } from './handler.ts';

/** The worker declaration (listed in workers/index.ts). */
export const notificationworker = defineWorker<NotificationPayload, NotificationServices>({
  name: 'notificationworker',
  queue: notification,
  // Deliveries wait on remote endpoints (up to NOTIFICATION_SEND_TIMEOUT each), not on this process.
  concurrency: 16,
  // Always on, as in Quay: events are only produced for notifications someone configured.
  handler: handleNotification,
});

export default notificationworker;
