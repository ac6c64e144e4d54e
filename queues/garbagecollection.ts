/**
 * `garbagecollection`: collect one repository's unrecoverable tags, then the manifests and blobs
 * nothing references any more (Quay's GCWorker, which polls; here jobs are pushed).
 *
 * Triggers: a tag deleted, expired or moved (the job is delayed to the second the tag leaves the
 * namespace's time machine), an upload lease expiring, a manual request, and the periodic sweep
 * (a scheduler tick without `repositoryId`, which finds repositories with collectable tags and
 * enqueues one job each).
 *
 * Why `dueAtS` is part of the dedupe id: several tags of one repository leave the time machine at
 * different moments. With an id of `garbagecollection/<repositoryId>` alone, a job delayed to
 * next week would swallow one due tomorrow, and tomorrow's tag would wait a week. With the due
 * second in the id, each moment gets its own job and jobs due in the same second collapse into
 * one. Two due jobs of one repository may then be runnable together; the handler serializes them
 * with a per-repository lock and defers (no attempt spent) when the lock is busy. A job finds
 * everything due by the time it runs, so a later job that finds nothing left is cheap.
 */
import { z } from 'zod';
import { defineQueue, jobOptions, KEEP_COMPLETED } from './contract.ts';
import { name, repositoryLabel, rowId, unixSeconds } from './fields.ts';

/** Why a repository needs collecting. */
export const GC_REASONS = ['tag_expired', 'upload_lease', 'sweep', 'manual'] as const;

/** The `garbagecollection` contract: one job per repository and due second, plus the sweep tick. */
export const garbagecollection = defineQueue({
  name: 'garbagecollection',
  version: 1,
  payload: z.object({
    v: z.literal(1),
    reason: z.enum(GC_REASONS),
    /** The repository to collect; absent only for the sweep tick, which covers every repository. */
    repositoryId: rowId.optional(),
    /** Unix second from which the work is due (0 for the sweep tick); part of the dedupe id. */
    dueAtS: unixSeconds,
    /** For logs only. */
    namespace: name.optional(),
    repository: name.optional(),
  }).refine((p) => p.repositoryId !== undefined || p.reason === 'sweep', {
    message: 'only the sweep may omit repositoryId',
    path: ['repositoryId'],
  }),
  // Ids carry the due second, so a kept completed job never swallows later work.
  jobOptions: jobOptions({ removeOnComplete: KEEP_COMPLETED }),
  dedupeId: (p) => `garbagecollection/${p.repositoryId ?? 'all'}/${p.dueAtS}`,
  logBindings: (p) => ({ repositoryId: p.repositoryId, repository: repositoryLabel(p.namespace, p.repository) }),
});

/** A `garbagecollection` payload. */
export type GarbageCollectionPayload = z.output<typeof garbagecollection.payload>;

/** The repository and due second a `garbagecollection` dedupe id names; undefined for the sweep tick's or a foreign id. */
export function parseGarbageCollectionJobId(id: string): { repositoryId: number; dueAtS: number } | undefined {
  const match = /^garbagecollection\/(\d+)\/(\d+)$/.exec(id);
  return match ? { repositoryId: Number(match[1]), dueAtS: Number(match[2]) } : undefined;
}
