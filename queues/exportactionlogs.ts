/**
 * `exportactionlogs`: export a namespace's (or repository's) action logs to storage and report
 * the link (Quay's ExportActionLogsWorker). Quay puts every request field in the body; quayfleet
 * records the request in `logexport` in the same transaction and the payload names that row. A
 * scheduler tick on the same queue removes exported files whose retention has passed.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, KEEP_COMPLETED } from './contract.ts';
import { name, rowId, uuid } from './fields.ts';

/** One export request. */
const exportRequest = z.object({
  v: z.literal(1),
  /** `logexport.export_id`, the id the API returned to the requester. */
  exportId: uuid,
  namespaceId: rowId,
  /** For logs only. */
  namespace: name,
});

/** The scheduler tick that removes exported files past their retention (Quay never removes them). */
const expirySweep = z.object({
  v: z.literal(1),
  sweep: z.literal('expired-files'),
});

/** The `exportactionlogs` contract: one job per export request (3 attempts, as in Quay), plus the expiry tick. */
export const exportactionlogs = defineQueue({
  name: 'exportactionlogs',
  version: 1,
  payload: z.union([exportRequest, expirySweep]),
  // Quay queues log exports with retries_remaining=3.
  jobOptions: jobOptions({ attempts: 3, removeOnComplete: KEEP_COMPLETED }),
  dedupeId: (p) => ('exportId' in p ? `exportactionlogs/${p.exportId}` : 'exportactionlogs/expiry-sweep'),
  logBindings: (p) => ('exportId' in p ? { namespaceId: p.namespaceId, namespace: p.namespace, exportId: p.exportId } : {}),
});

/** An `exportactionlogs` payload: an export request or the expiry tick. */
export type ExportActionLogsPayload = z.output<typeof exportactionlogs.payload>;
/** An export request's payload. */
export type ExportRequestPayload = z.output<typeof exportRequest>;
