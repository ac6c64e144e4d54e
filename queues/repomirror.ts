/**
 * `repomirror`: sync one mirrored repository from its upstream (Quay's RepoMirrorWorker, which
 * polls `repomirrorconfig`; Quay has no queue for it, seed GAP-13). Postgres stays the source of
 * truth for mirror state; the job only carries which repository to sync. The scheduler tick
 * (no `repositoryId`) selects mirrors that are due and enqueues one job each.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, REMOVE_COMPLETED } from './contract.ts';
import { name, repositoryLabel, rowId } from './fields.ts';

/** The `repomirror` contract: one sync per repository at a time, plus the scheduler tick. */
export const repomirror = defineQueue({
  name: 'repomirror',
  version: 1,
  payload: z.object({
    v: z.literal(1),
    /** The mirrored repository; absent for the scheduler tick that finds due mirrors. */
    repositoryId: rowId.optional(),
    /** `schedule` for due syncs and ticks, `sync_now` for an operator's request. */
    trigger: z.enum(['schedule', 'sync_now']),
    /** For logs only. */
    namespace: name.optional(),
    repository: name.optional(),
  }),
  // One sync per repository at a time, and the next sync must not be swallowed by the last one.
  jobOptions: jobOptions({ removeOnComplete: REMOVE_COMPLETED }),
  dedupeId: (p) => `repomirror/${p.repositoryId ?? 'tick'}`,
  logBindings: (p) => ({ repositoryId: p.repositoryId, repository: repositoryLabel(p.namespace, p.repository) }),
});

/** A `repomirror` payload. */
export type RepoMirrorPayload = z.output<typeof repomirror.payload>;
