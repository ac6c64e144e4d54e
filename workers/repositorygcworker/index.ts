/** The repositorygcworker: purges repositories marked for deletion (queue `repositorygc`). */
import { repositorygc, type RepositoryGcPayload } from '../../queues/repositorygc.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { handleRepositoryGc, type RepositoryGcServices } from './handler.ts';

/** The worker declaration (listed in workers/index.ts). */
export const repositorygcworker = defineWorker<RepositoryGcPayload, RepositoryGcServices>({
  name: 'repositorygcworker',
  queue: repositorygc,
  // Different repositories purge in parallel; the per-repository lock keeps one purge per target.
  concurrency: 2,
  runsWhenRemoved: true,
  gate: (config) => (config.quay.FEATURE_REPOSITORY_GARBAGE_COLLECTION
    ? { enabled: true, reason: 'FEATURE_REPOSITORY_GARBAGE_COLLECTION is true' }
    : { enabled: false, reason: 'FEATURE_REPOSITORY_GARBAGE_COLLECTION is false: deleted repositories are not purged' }),
  handler: handleRepositoryGc,
});

export default repositorygcworker;
