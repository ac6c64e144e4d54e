/**
 * The storagereplicationworker: copies each pushed blob to every location it must be in, on the
 * `imagestoragereplication` queue (Quay's StorageReplicationWorker).
 */
import { imagestoragereplication, type ImageStorageReplicationPayload } from '../../queues/imagestoragereplication.ts';
import type { Config } from '../../shared/config/index.ts';
import type { GateDecision } from '../../shared/runtime/worker.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { handleReplication, type ReplicationCheckpoint, type ReplicationServices } from './handler.ts';

/**
 * FEATURE_STORAGE_REPLICATION, and no LocalStorage location: a pod's local disk is not shared, so
 * a copy "to" it would land on whichever pod ran the job (Quay refuses too). Where every process
 * runs on one machine (`quayfleet all`, tests, single-host installs) the operator may say so with
 * STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE (quayfleet's key).
 */
export function replicationGate(config: Config): GateDecision {
  const quay = config.quay;
  if (!quay.FEATURE_STORAGE_REPLICATION) return { enabled: false, reason: 'FEATURE_STORAGE_REPLICATION is false: blobs are not replicated between storage locations' };
  const local = Object.entries(quay.DISTRIBUTED_STORAGE_CONFIG ?? {}).filter(([, [driver]]) => driver === 'LocalStorage').map(([name]) => name);
  if (local.length > 0 && !quay.STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE) {
    return {
      enabled: false,
      reason: `storage replication cannot use LocalStorage location(s) ${local.join(', ')}: a pod's local disk is not shared with the other pods, `
        + 'so copies would land on whichever machine ran the job. Use object storage, or set STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE: true '
        + 'when every process runs on one machine (or the directories are one shared volume)',
    };
  }
  return { enabled: true, reason: 'FEATURE_STORAGE_REPLICATION is true' };
}

/** The worker declaration (listed in workers/index.ts). */
export const storagereplicationworker = defineWorker<ImageStorageReplicationPayload, ReplicationServices, ReplicationCheckpoint>({
  name: 'storagereplicationworker',
  queue: imagestoragereplication,
  // Copies are I/O-bound; each job copies to up to four destinations at once.
  concurrency: 4,
  gate: replicationGate,
  handler: handleReplication,
});

export default storagereplicationworker;
