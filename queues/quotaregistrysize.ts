/**
 * `quotaregistrysize`: compute the registry-wide total on demand (Quay's QuotaRegistrySizeWorker,
 * which polls the single `quotaregistrysize` row). One job at a time for the whole registry.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, REMOVE_COMPLETED } from './contract.ts';

/** The `quotaregistrysize` contract: at most one registry-total job at a time. */
export const quotaregistrysize = defineQueue({
  name: 'quotaregistrysize',
  version: 1,
  payload: z.object({ v: z.literal(1) }),
  // Every request after the last one finished must start a new calculation.
  jobOptions: jobOptions({ removeOnComplete: REMOVE_COMPLETED }),
  dedupeId: () => 'quotaregistrysize',
});

/** A `quotaregistrysize` payload. */
export type QuotaRegistrySizePayload = z.output<typeof quotaregistrysize.payload>;
