/**
 * The storagereplicationworker: copies each pushed blob to every location it must be in, on the
 * `imagestoragereplication` queue (Quay's StorageReplicationWorker).
 */
import { imagestoragereplication, type ImageStorageReplicationPayload } from '../../queues/imagestoragereplication.ts';
import type { Config } from '../../shared/config/index.ts';
import type { GateDecision } from '../../shared/runtime/worker.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { replicationGate } from '../../shared/storage/replication-gate.ts';
import { SWEEP_EVERY_SECONDS } from './sweep.ts';
import { handleReplication, type ReplicationCheckpoint, type ReplicationServices } from './handler.ts';

/** The gate: shared with the front end, which enqueues only when this worker will run. */
export function replicationWorkerGate(config: Config): GateDecision {
  return replicationGate(config.quay);
}

/** The worker declaration (listed in workers/index.ts). */
export const storagereplicationworker = defineWorker<ImageStorageReplicationPayload, ReplicationServices, ReplicationCheckpoint>({
  name: 'storagereplicationworker',
  queue: imagestoragereplication,
  // Copies are I/O-bound: a job spends its time waiting on two storage requests and a few Postgres
  // round trips, so 16 jobs keep the backends busy (the bench's peer runs at the same 16). Memory:
  // at most 16 buffered blobs of up to 4 MiB (copy.ts); larger blobs stream.
  concurrency: 16,
  gate: replicationWorkerGate,
  // The reconciler (sweep.ts): one page of blobs per tick, fleet-wide.
  schedule: [{ id: 'imagestoragereplication-sweep', everySeconds: SWEEP_EVERY_SECONDS, payload: { v: 1, sweep: true } }],
  handler: handleReplication,
});

export default storagereplicationworker;
