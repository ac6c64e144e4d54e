/** The upload-cleanup settings of a config: Quay's keys, defaults and hard-coded thresholds. */
import type { Config } from '../../shared/config/index.ts';

/** Quay's fixed age of a stale multipart upload (PROJQUAY-12557: not configurable, so in-flight uploads are never aborted). */
export const STALE_MULTIPART_MS = 24 * 3600_000;

export interface UploadCleanupSettings {
  /** Inactivity after which a session is abandoned (BLOBUPLOAD_DELETION_DATE_THRESHOLD minutes; 2 days). */
  readonly sessionThresholdMs: number;
  /** Age after which an ownerless multipart write is aborted (1 day). */
  readonly multipartThresholdMs: number;
  /** Sweep ownerless objects under `uploads/` (CLEAN_BLOB_UPLOAD_FOLDER). */
  readonly cleanFolder: boolean;
  /** Abort ownerless multipart writes (FEATURE_ENABLE_STALE_MPU_CLEANUP). */
  readonly cleanMultipart: boolean;
  /** Seconds between runs (BLOBUPLOAD_CLEANUP_FREQUENCY; hourly). */
  readonly everySeconds: number;
  /** Hand expired upload leases to GC (FEATURE_GARBAGE_COLLECTION: only when its worker runs). */
  readonly handLeasesToGc: boolean;
}

/** The settings `config` asks for. */
export function uploadCleanupSettings(config: Config): UploadCleanupSettings {
  const q = config.quay;
  return {
    sessionThresholdMs: q.BLOBUPLOAD_DELETION_DATE_THRESHOLD * 60_000,
    multipartThresholdMs: STALE_MULTIPART_MS,
    cleanFolder: q.CLEAN_BLOB_UPLOAD_FOLDER,
    cleanMultipart: q.FEATURE_ENABLE_STALE_MPU_CLEANUP,
    everySeconds: Math.max(1, q.BLOBUPLOAD_CLEANUP_FREQUENCY),
    handLeasesToGc: q.FEATURE_GARBAGE_COLLECTION,
  };
}
