/**
 * The storagereplicationworker: copies each pushed blob to every location it must be in, on the
 * `imagestoragereplication` queue (Quay's StorageReplicationWorker).
 */
import { imagestoragereplication, type ImageStorageReplicationPayload } from '../../queues/imagestoragereplication.ts';
import type { Config } from '../../shared/config/index.ts';
import type { GateDecision } from '../../shared/runtime/worker.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { replicationGate } from '../../shared/storage/replication-gate.ts';
import { handleReplication, type ReplicationCheckpoint, type ReplicationServices } from './handler.ts';

/** The gate: shared with the front end, which enqueues only when this worker will run. */
export function replicationWorkerGate(config: Config): GateDecision {
  return replicationGate(config.quay);
}

/** The worker declaration (listed in workers/index.ts). */
export const storagereplicationworker = defineWorker<ImageStorageReplicationPayload, ReplicationServices, ReplicationCheckpoint>({
  name: 'storagereplicationworker',
  queue: imagestoragereplication,
  // Copies are I/O-bound; each job copies to up to four destinations at once.
  concurrency: 4,
  gate: replicationWorkerGate,
  handler: handleReplication,
});

export default storagereplicationworker;
