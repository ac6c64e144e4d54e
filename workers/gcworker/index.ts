/** The gcworker: per-repository garbage collection on the `garbagecollection` queue, plus its sweep. */
import { garbagecollection, type GarbageCollectionPayload } from '../../queues/garbagecollection.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { handleGarbageCollection, type GcServices } from './handlers.ts';

/** The worker declaration (listed in workers/index.ts). */
export const gcworker = defineWorker<GarbageCollectionPayload, GcServices>({
  name: 'gcworker',
  queue: garbagecollection,
  // Jobs of different repositories run in parallel; one repository's jobs serialize on its lock.
  concurrency: 4,
  schedule: (config) => [{
    id: 'gc-sweep',
    everySeconds: config.quay.GARBAGE_COLLECTION_FREQUENCY,
    payload: { v: 1, reason: 'sweep', dueAtS: 0 },
  }],
  runsWhenRemoved: true,
  gate: (config) => (config.quay.FEATURE_GARBAGE_COLLECTION
    ? { enabled: true, reason: 'FEATURE_GARBAGE_COLLECTION is true' }
    : { enabled: false, reason: 'FEATURE_GARBAGE_COLLECTION is false: tags, manifests and blobs are not collected' }),
  handler: handleGarbageCollection,
});

export default gcworker;
