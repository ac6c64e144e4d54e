/**
 * Enforcement on the push path (reference §3.4). The front end refuses with HTTP 403 `DENIED`
 * and QUOTA_EXCEEDED_MESSAGE when the namespace is at or over a Reject limit:
 * - upload start (`POST .../blobs/uploads/`): the namespace total;
 * - chunk and final upload (`PATCH`/`PUT .../uploads/<uuid>`): the namespace total plus the bytes
 *   of this repository's uploads in progress (PR #2704: never the repository total again), checked
 *   before writing; a refused session is cancelled so a later, smaller upload fits;
 * - tag manifest PUT: inside the push transaction, on the total after the manifest's blobs were
 *   added (accounting.ts), so concurrent pushes cannot all slip under the limit.
 * Nothing is refused while the namespace's totals are not complete (Quay reads 0 then), or when
 * FEATURE_QUOTA_MANAGEMENT or FEATURE_VERIFY_QUOTA is off. The same state always gets the same
 * answer, so a client's retries are refused alike.
 */
import type { Config } from '../../config/index.ts';
import type { Queryable } from '../pool.ts';
import { checkLimits, effectiveLimits, findNamespaceQuota } from './limits.ts';
import { quotaRejections, type RejectionStage } from './metrics.ts';
import { enforcing, quotaSettings } from './settings.ts';

/** The registry error message of a push refused for quota (Quay's QuotaExceeded). */
export const QUOTA_EXCEEDED_MESSAGE = 'Quota has been exceeded on namespace';

/** Thrown inside the manifest push transaction when the push would leave the namespace over a Reject limit. */
export class QuotaExceededError extends Error {
  constructor(readonly namespaceId: number, readonly usageBytes: number) {
    super(QUOTA_EXCEEDED_MESSAGE);
    this.name = 'QuotaExceededError';
  }
}

/** Where in an upload the check runs: start (no session yet), a chunk, or the final PUT. */
export type UploadStage = 'start' | 'chunk' | 'complete';

const STAGE_LABEL: Record<UploadStage, RejectionStage> = { start: 'upload_start', chunk: 'upload_chunk', complete: 'upload_complete' };

/**
 * Whether the upload to `repository` must be refused for quota. For `chunk`/`complete` pass the
 * session `uuid`: the repository's in-flight bytes count, and a refused session is deleted
 * (its storage is left to the upload cleanup sweep). Callers answer 403 DENIED with
 * QUOTA_EXCEEDED_MESSAGE when this returns true.
 */
export async function uploadExceedsQuota(
  db: Queryable, config: Config, repository: { readonly id: number; readonly namespace_user_id: number },
  at: { readonly stage: UploadStage; readonly uuid?: string },
): Promise<boolean> {
  const settings = quotaSettings(config);
  if (!enforcing(settings)) return false;
  const { rows } = await db.query<{ complete: boolean | null; size_bytes: number | null; in_flight: number }>(
    `SELECT s.backfill_complete AS complete, s.size_bytes,
            CASE WHEN $3 THEN (SELECT COALESCE(sum(byte_count), 0) FROM blobupload WHERE repository_id = $2) ELSE 0 END::bigint AS in_flight
     FROM (SELECT 1) one LEFT JOIN quotanamespacesize s ON s.namespace_user_id = $1`,
    [repository.namespace_user_id, repository.id, at.uuid !== undefined]);
  const row = rows[0]!;
  if (!row.complete) return false;
  const limits = effectiveLimits(await findNamespaceQuota(db, repository.namespace_user_id), settings);
  if (!checkLimits(limits, (row.size_bytes ?? 0) + row.in_flight).rejected) return false;
  if (at.uuid !== undefined) await db.query(`DELETE FROM blobupload WHERE uuid = $1 AND repository_id = $2`, [at.uuid, repository.id]);
  quotaRejections.inc({ stage: STAGE_LABEL[at.stage] });
  return true;
}
