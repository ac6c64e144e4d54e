/**
 * `exportactionlogs`: export a namespace's (or repository's) action logs to storage and report
 * the link (Quay's ExportActionLogsWorker). Quay puts every request field in the body; quayfleet
 * records the request in `logexport` in the same transaction and the payload names that row.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, KEEP_COMPLETED } from './contract.ts';
import { name, rowId, uuid } from './fields.ts';

/** The `exportactionlogs` contract: one job per export request (3 attempts, as in Quay). */
export const exportactionlogs = defineQueue({
  name: 'exportactionlogs',
  version: 1,
  payload: z.object({
    v: z.literal(1),
    /** `logexport.export_id`, the id the API returned to the requester. */
    exportId: uuid,
    namespaceId: rowId,
    /** For logs only. */
    namespace: name,
  }),
  // Quay queues log exports with retries_remaining=3.
  jobOptions: jobOptions({ attempts: 3, removeOnComplete: KEEP_COMPLETED }),
  dedupeId: (p) => `exportactionlogs/${p.exportId}`,
  logBindings: (p) => ({ namespaceId: p.namespaceId, namespace: p.namespace, exportId: p.exportId }),
});

/** An `exportactionlogs` payload. */
export type ExportActionLogsPayload = z.output<typeof exportactionlogs.payload>;
