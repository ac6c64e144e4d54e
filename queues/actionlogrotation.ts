/**
 * `actionlogrotation`: archive stale action logs and delete them (Quay's LogRotateWorker, which
 * has no queue: a periodic worker under a global lock). quayfleet's name; the only producer is the
 * worker's own schedule, every ACTION_LOG_ROTATION_FREQUENCY seconds.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, REMOVE_COMPLETED } from './contract.ts';

/** The `actionlogrotation` contract: one rotation at a time registry-wide. */
export const actionlogrotation = defineQueue({
  name: 'actionlogrotation',
  version: 1,
  payload: z.object({ v: z.literal(1) }),
  jobOptions: jobOptions({ removeOnComplete: REMOVE_COMPLETED }),
  dedupeId: () => 'actionlogrotation',
});

/** An `actionlogrotation` payload. */
export type ActionLogRotationPayload = z.output<typeof actionlogrotation.payload>;
