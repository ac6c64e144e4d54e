/**
 * `quotatotal`: compute one namespace's quota totals from scratch (Quay's quota backfill, which
 * polls for namespaces without totals; here one job per namespace). Quay has no queue for this,
 * so the name is a quayfleet extension (seed GAP-13).
 */
import { z } from 'zod';
import { defineQueue, jobOptions, REMOVE_COMPLETED } from './contract.ts';
import { name, rowId } from './fields.ts';

/** The `quotatotal` contract: one totalling job per namespace, plus the backfill tick. */
export const quotatotal = defineQueue({
  name: 'quotatotal',
  version: 1,
  payload: z.object({
    v: z.literal(1),
    /** The namespace to total; absent for the backfill tick, which finds namespaces without totals. */
    namespaceId: rowId.optional(),
    /** For logs only. */
    namespace: name.optional(),
  }),
  // A namespace may need totalling again later (quota re-enabled): completed jobs must not linger.
  jobOptions: jobOptions({ removeOnComplete: REMOVE_COMPLETED }),
  dedupeId: (p) => `quotatotal/${p.namespaceId ?? 'backfill'}`,
  logBindings: (p) => ({ namespaceId: p.namespaceId, namespace: p.namespace }),
});

/** A `quotatotal` payload. */
export type QuotaTotalPayload = z.output<typeof quotatotal.payload>;
