/** The namespacegcworker: purges users and organizations marked for deletion (queue `namespacegc`). */
import { namespacegc, type NamespaceGcPayload } from '../../queues/namespacegc.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { handleNamespaceGc, type NamespaceGcServices } from './handler.ts';

/** The worker declaration (listed in workers/index.ts). */
export const namespacegcworker = defineWorker<NamespaceGcPayload, NamespaceGcServices>({
  name: 'namespacegcworker',
  queue: namespacegc,
  // Different namespaces purge in parallel; the per-namespace lock keeps one purge per target.
  concurrency: 2,
  runsWhenRemoved: true,
  gate: (config) => (config.quay.FEATURE_NAMESPACE_GARBAGE_COLLECTION
    ? { enabled: true, reason: 'FEATURE_NAMESPACE_GARBAGE_COLLECTION is true' }
    : { enabled: false, reason: 'FEATURE_NAMESPACE_GARBAGE_COLLECTION is false: deleted namespaces are not purged' }),
  handler: handleNamespaceGc,
});

export default namespacegcworker;
