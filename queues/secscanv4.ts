/**
 * `secscanv4`: page through one Clair v4 notification and fan it out as `vulnerability_found`
 * notifications (Quay's SecurityScanningNotificationWorker). Quay's body is `{notification_id}`
 * under `secscanv4/with_id/<id>/`, enqueued only when not already alive; the dedupe id replaces
 * that check. The current page is a checkpoint of the job, not part of the payload.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, KEEP_COMPLETED } from './contract.ts';
import { token } from './fields.ts';

/** The `secscanv4` contract: one job per Clair notification id. */
export const secscanv4 = defineQueue({
  name: 'secscanv4',
  version: 1,
  payload: z.object({
    v: z.literal(1),
    /** Clair's notification id (a UUID in practice). */
    notificationId: token,
  }),
  // Clair re-delivers a webhook until the notification is deleted; keeping the completed job a
  // day absorbs late re-deliveries of work already done.
  jobOptions: jobOptions({ removeOnComplete: KEEP_COMPLETED }),
  dedupeId: (p) => `secscanv4/with_id/${p.notificationId}`,
  logBindings: (p) => ({ notificationId: p.notificationId }),
});

/** A `secscanv4` payload. */
export type SecScanV4Payload = z.output<typeof secscanv4.payload>;
