/**
 * `notification`: deliver one event to one configured notification (webhook, email, Slack, ...)
 * (Quay's NotificationWorker). Quay's body: `{notification_uuid, event_data, performer_data}`,
 * plus `notification_type: "namespace"` for namespace notifications. Quay does not dedupe these;
 * quayfleet gives each event occurrence an `eventId` so a republished outbox row is a no-op.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, KEEP_COMPLETED } from './contract.ts';
import { uuid } from './fields.ts';

/** Quay's notification event names (notifications/notificationevent.py). */
export const NOTIFICATION_EVENTS = [
  'repo_push',
  'repo_mirror_sync_started', 'repo_mirror_sync_success', 'repo_mirror_sync_failed',
  'vulnerability_found',
  'build_queued', 'build_start', 'build_success', 'build_failure', 'build_cancelled',
  'repo_image_expiry',
  'quota_warning', 'quota_error',
] as const;

/** The `notification` contract: one job per (notification, event occurrence); 30 s retry base. */
export const notification = defineQueue({
  name: 'notification',
  version: 1,
  payload: z.object({
    v: z.literal(1),
    /** The `repositorynotification` (or `namespacenotification`) row's uuid. */
    notificationUuid: uuid,
    /** One id per event occurrence, chosen by the producer; part of the dedupe id. */
    eventId: uuid,
    event: z.enum(NOTIFICATION_EVENTS),
    /** Quay's event_data: what a webhook receives as its body. */
    eventData: z.record(z.string(), z.unknown()),
    /** Who caused the event (`entity_id`, `entity_name`); empty for worker-originated events. */
    performerData: z.record(z.string(), z.unknown()),
    /** Present for namespace-level notifications (quota events), as in Quay. */
    notificationType: z.literal('namespace').optional(),
  }),
  // Quay's NotificationWorker retries after 30 s rather than the default 300 s.
  jobOptions: jobOptions({ retryAfterMs: 30_000, removeOnComplete: KEEP_COMPLETED }),
  dedupeId: (p) => `notification/${p.notificationUuid}/${p.eventId}`,
  logBindings: (p) => ({
    notificationUuid: p.notificationUuid,
    event: p.event,
    repository: typeof p.eventData.repository === 'string' ? p.eventData.repository : undefined,
  }),
});

/** A `notification` payload. */
export type NotificationPayload = z.output<typeof notification.payload>;
