/**
 * `exportactionlogs`: export a namespace's (or repository's) action logs to storage and report
 * the link (Quay's ExportActionLogsWorker). Quay puts every request field in the body; quayfleet
 * records the request in `logexport` in the same transaction and the payload names that row.
 * Each exported file also gets a delayed removal job for the moment its retention ends (Quay never
 * removes them), written to the outbox in the transaction that sets that moment.
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

/**
 * Remove one export's file once `logexport.expires_at` has passed. `dueAtMs` is the expiry the job
 * was created for (part of its id, so a moved expiry gets a job of its own); the row decides.
 */
const fileRemoval = z.object({
  v: z.literal(1),
  removeExportFile: uuid,
  dueAtMs: z.number().int().nonnegative(),
});

/**
 * Retired: the 5-minute retention sweep of earlier versions. A tick still queued when a newer
 * worker starts is accepted and runs the reconcile; the worker removes the scheduler itself.
 */
const expirySweep = z.object({
  v: z.literal(1),
  sweep: z.literal('expired-files'),
});

/** The `exportactionlogs` contract: one job per export request (3 attempts, as in Quay), plus one per file removal. */
export const exportactionlogs = defineQueue({
  name: 'exportactionlogs',
  version: 1,
  payload: z.union([exportRequest, fileRemoval, expirySweep]),
  // Quay queues log exports with retries_remaining=3.
  jobOptions: jobOptions({ attempts: 3, removeOnComplete: KEEP_COMPLETED }),
  dedupeId: (p) => ('exportId' in p ? `exportactionlogs/${p.exportId}`
    : 'removeExportFile' in p ? `exportactionlogs/remove/${p.removeExportFile}/${p.dueAtMs}`
      : 'exportactionlogs/expiry-sweep'),
  logBindings: (p) => ('exportId' in p ? { namespaceId: p.namespaceId, namespace: p.namespace, exportId: p.exportId }
    : 'removeExportFile' in p ? { exportId: p.removeExportFile } : {}),
});

/** An `exportactionlogs` payload: an export request, a file removal, or the retired sweep tick. */
export type ExportActionLogsPayload = z.output<typeof exportactionlogs.payload>;
/** An export request's payload. */
export type ExportRequestPayload = z.output<typeof exportRequest>;
/** A file removal's payload. */
export type ExportFileRemovalPayload = z.output<typeof fileRemoval>;
