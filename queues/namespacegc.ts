/**
 * `namespacegc`: purge a namespace marked for deletion (Quay's NamespaceGCWorker). The mark is
 * synchronous (rename, hide, `deletednamespace` marker, enqueue); the purge deletes everything in
 * bounded batches and re-enqueues itself until done. Quay's body: `{marker_id, original_username}`.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, KEEP_COMPLETED } from './contract.ts';
import { name, rowId } from './fields.ts';

/** The `namespacegc` contract: one purge job per namespace marked for deletion. */
export const namespacegc = defineQueue({
  name: 'namespacegc',
  version: 1,
  payload: z.object({
    v: z.literal(1),
    namespaceId: rowId,
    /** The `deletednamespace` row; the purge is over when it is gone. */
    markerId: rowId,
    /** The name before the mark renamed it, for logs. */
    originalUsername: name,
  }),
  // Namespace ids are never reused, so the id never recurs: keep completed jobs for history.
  jobOptions: jobOptions({ removeOnComplete: KEEP_COMPLETED }),
  dedupeId: (p) => `namespacegc/${p.namespaceId}`,
  logBindings: (p) => ({ namespaceId: p.namespaceId, namespace: p.originalUsername }),
});

/** A `namespacegc` payload. */
export type NamespaceGcPayload = z.output<typeof namespacegc.payload>;
