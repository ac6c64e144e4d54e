/**
 * The `repomirror` jobs: the scheduler tick (no repository) finds the mirrors due now (Quay's
 * three candidate filters, with expired leases reclaimable) and enqueues one job per repository;
 * a repository job runs one sync (sync.ts). The dedupe id `repomirror/<repositoryId>` plus the
 * row's claim mean one sync per repository at a time, across every replica.
 */
import { repomirror, type RepoMirrorPayload } from '../../queues/repomirror.ts';
import type { Config } from '../../shared/config/index.ts';
import { countUnmirrored, findDueMirrors } from '../../shared/db/mirrors.ts';
import { mapBounded } from '../../shared/storage/concurrency.ts';
import type { DistributedStorage } from '../../shared/storage/distributed.ts';
import type { JobContext, WorkerServices } from '../../shared/runtime/worker.ts';
import { rowsUnmirrored } from './metrics.ts';
import { performMirror, type SyncSettings } from './sync.ts';

/** What the repomirrorworker needs from its process. */
export interface RepoMirrorServices extends WorkerServices {
  readonly storage: DistributedStorage;
  readonly config: Config;
}

/** Due mirrors enqueued per tick at most; the next tick takes the rest. */
export const TICK_BATCH = 1000;

/** The handler for `settings`. */
export function repoMirrorHandler(settings: SyncSettings) {
  return async function handleRepoMirror(payload: RepoMirrorPayload, ctx: JobContext<RepoMirrorServices>): Promise<void> {
    if (payload.repositoryId === undefined) {
      const due = await findDueMirrors(ctx.db, new Date(), TICK_BATCH);
      await mapBounded(due, 16, (row) => ctx.enqueue(repomirror, {
        v: 1, repositoryId: row.repository_id, trigger: 'schedule', namespace: row.namespace, repository: row.repository,
      }));
      rowsUnmirrored.set(await countUnmirrored(ctx.db));
      if (due.length > 0) ctx.log.info({ due: due.length }, 'mirror tick enqueued due mirrors');
      return;
    }
    const result = await performMirror(ctx, payload.repositoryId, settings, ctx.log, ctx.signal);
    if (result === 'not_due') ctx.log.debug('mirror not due or claimed elsewhere');
  };
}
