/**
 * Whether storage replication runs, decided once from config for both sides: the front end
 * enqueues replication jobs only when the storagereplicationworker will run them.
 */
import type { DistributedStorageConfig } from './distributed.ts';

/** The config keys the decision reads. */
export interface ReplicationGateConfig extends DistributedStorageConfig {
  readonly FEATURE_STORAGE_REPLICATION: boolean;
  readonly STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE: boolean;
}

/**
 * FEATURE_STORAGE_REPLICATION, and no LocalStorage location: a pod's local disk is not shared, so
 * a copy "to" it would land on whichever pod ran the job (Quay refuses too). Where every process
 * runs on one machine (`quayfleet all`, tests, single-host installs) or the directories are one
 * shared volume, the operator says so with STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE (quayfleet's key).
 */
export function replicationGate(quay: ReplicationGateConfig): { enabled: boolean; reason: string } {
  if (!quay.FEATURE_STORAGE_REPLICATION) return { enabled: false, reason: 'FEATURE_STORAGE_REPLICATION is false: blobs are not replicated between storage locations' };
  const local = Object.entries(quay.DISTRIBUTED_STORAGE_CONFIG).filter(([, [driver]]) => driver === 'LocalStorage').map(([name]) => name);
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
