/**
 * Every queue in one table. Queue names are Quay's wherever Quay has one, so the `queue_name`
 * label of `quay_queue_*` keeps its values; the rest are quayfleet extensions.
 *
 * | queue                     | consumed by                        | dedupe id                                   | attempts | retry base |
 * |---------------------------|------------------------------------|---------------------------------------------|----------|------------|
 * | garbagecollection         | gcworker                           | garbagecollection/<repositoryId>/<dueAtS>   | 5        | 300 s      |
 * | namespacegc               | namespacegcworker                  | namespacegc/<namespaceId>                   | 5        | 300 s      |
 * | repositorygc              | repositorygcworker                 | repositorygc/<repositoryId>                 | 5        | 300 s      |
 * | quotatotal                | quotatotalworker                   | quotatotal/<namespaceId>                    | 5        | 300 s      |
 * | quotaregistrysize         | quotatotalworker                   | quotaregistrysize                           | 5        | 300 s      |
 * | repomirror                | repomirrorworker                   | repomirror/<repositoryId>                   | 5        | 300 s      |
 * | imagestoragereplication   | storagereplicationworker           | imagestoragereplication/<storageId>         | 5        | 300 s      |
 * | secscanv4                 | securityscanningnotificationworker | secscanv4/with_id/<notificationId>          | 5        | 300 s      |
 * | notification              | notificationworker                 | notification/<notificationUuid>/<eventId>   | 5        | 30 s       |
 * | exportactionlogs          | exportactionlogsworker             | exportactionlogs/<exportId>                 | 3        | 300 s      |
 * | actionlogrotation         | logrotateworker                    | actionlogrotation                           | 5        | 300 s      |
 * | chunk_cleanup             | chunkcleanupworker                 | chunk_cleanup/<location>/<uploadUuid>       | 5        | 300 s      |
 * | blobuploadcleanup         | chunkcleanupworker                 | blobuploadcleanup/<operation>/<location>    | 5        | 300 s      |
 * | dockerfilebuild           | (reserved, no worker)              | —                                           | —        | —          |
 *
 * Retry n waits `base * 2^(n-1)` (minus up to 10 % jitter): 300, 600, 1200, 2400 s by default.
 */
import type { QueueContract, VersionedPayload } from './contract.ts';
import { actionlogrotation } from './actionlogrotation.ts';
import { blobUploadCleanup } from './blob-upload-cleanup.ts';
import { chunkCleanup } from './chunk-cleanup.ts';
import { DOCKERFILE_BUILD_QUEUE_NAME } from './dockerfilebuild.ts';
import { exportactionlogs } from './exportactionlogs.ts';
import { garbagecollection } from './garbagecollection.ts';
import { imagestoragereplication } from './imagestoragereplication.ts';
import { namespacegc } from './namespacegc.ts';
import { notification } from './notification.ts';
import { quotaregistrysize } from './quotaregistrysize.ts';
import { quotatotal } from './quotatotal.ts';
import { repomirror } from './repomirror.ts';
import { repositorygc } from './repositorygc.ts';
import { secscanv4 } from './secscanv4.ts';

/** Every queue with a worker, keyed by queue name. */
export const QUEUES = {
  garbagecollection,
  namespacegc,
  repositorygc,
  quotatotal,
  quotaregistrysize,
  repomirror,
  imagestoragereplication,
  secscanv4,
  notification,
  exportactionlogs,
  actionlogrotation,
  chunk_cleanup: chunkCleanup,
  blobuploadcleanup: blobUploadCleanup,
} as const;

/** The name of a queue with a worker. */
export type QueueName = keyof typeof QUEUES;

/** Queue names reserved for Quay compatibility that have no worker in quayfleet. */
export const RESERVED_QUEUE_NAMES: readonly string[] = [DOCKERFILE_BUILD_QUEUE_NAME];

/** Every queue name the fleet reports on: the queues with workers, then the reserved ones. */
export const ALL_QUEUE_NAMES: readonly string[] = [...Object.keys(QUEUES), ...RESERVED_QUEUE_NAMES];

/** The contract of the queue called `name`, or undefined for reserved and unknown names. */
export function contractFor(name: string): QueueContract<VersionedPayload> | undefined {
  return Object.hasOwn(QUEUES, name) ? (QUEUES[name as QueueName] as unknown as QueueContract<VersionedPayload>) : undefined;
}

export * from './contract.ts';
export { actionlogrotation, blobUploadCleanup, chunkCleanup, DOCKERFILE_BUILD_QUEUE_NAME, exportactionlogs, garbagecollection,
  imagestoragereplication, namespacegc, notification, quotaregistrysize, quotatotal, repomirror, repositorygc, secscanv4 };
// The payload type of each queue.
export type { ActionLogRotationPayload } from './actionlogrotation.ts';
export type { BlobUploadCleanupPayload } from './blob-upload-cleanup.ts';
export type { ChunkCleanupPayload } from './chunk-cleanup.ts';
export type { ExportActionLogsPayload } from './exportactionlogs.ts';
export type { GarbageCollectionPayload } from './garbagecollection.ts';
export type { ImageStorageReplicationPayload } from './imagestoragereplication.ts';
export type { NamespaceGcPayload } from './namespacegc.ts';
export type { NotificationPayload } from './notification.ts';
export type { QuotaRegistrySizePayload } from './quotaregistrysize.ts';
export type { QuotaTotalPayload } from './quotatotal.ts';
export type { RepoMirrorPayload } from './repomirror.ts';
export type { RepositoryGcPayload } from './repositorygc.ts';
export type { SecScanV4Payload } from './secscanv4.ts';
