/**
 * `chunk_cleanup`: the leftover segments of one finished or cancelled upload (staged chunks,
 * superseded tails, the upload object itself), queued 30 s after the upload ended. Only keys of
 * that upload (`uploads/<uuid>` and `uploads/<uuid>.*`) are ever touched; the key `uploads/<uuid>`
 * also stands for its multipart writes, which are aborted. Should the session still exist (a client
 * kept using it), whatever its recorded state references is left alone. Idempotent: a missing key
 * or an unknown multipart write counts as done.
 */
import type { ChunkCleanupPayload } from '../../queues/chunk-cleanup.ts';
import type { Queryable } from '../../shared/db/pool.ts';
import type { UploadStorageState } from '../../shared/db/uploads.ts';
import { PermanentFailureError } from '../../shared/runtime/outcomes.ts';
import { uploadKey } from '../../shared/storage/keys.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';

/** What one job removed. */
export interface SegmentCleanup {
  objects: number;
  bytes: number;
  aborted: number;
  /** Keys left because the live session still references them. */
  kept: number;
}

async function liveState(db: Queryable, uuid: string): Promise<UploadStorageState | undefined> {
  const { rows } = await db.query<{ storage_metadata: UploadStorageState }>(`SELECT storage_metadata FROM blobupload WHERE uuid = $1`, [uuid]);
  return rows[0]?.storage_metadata;
}

/** Deletes the segments of `payload` from `store`; throws PermanentFailureError for a key of another upload. */
export async function cleanSegments(db: Queryable, store: ObjectStore, payload: ChunkCleanupPayload): Promise<SegmentCleanup> {
  const key = uploadKey(payload.uploadUuid);
  const foreign = payload.paths.filter((p) => p !== key && !p.startsWith(`${key}.`));
  if (foreign.length > 0) throw new PermanentFailureError(`chunk_cleanup of upload ${payload.uploadUuid} names keys of no such upload: ${foreign.slice(0, 3).join(', ')}`);
  const live = await liveState(db, payload.uploadUuid);
  const referenced = new Set(live ? [key, ...(live.tail ? [live.tail.key] : [])] : []);
  const paths = [...new Set(payload.paths)].filter((p) => !referenced.has(p));
  const result: SegmentCleanup = { objects: 0, bytes: 0, aborted: 0, kept: payload.paths.length - paths.length };
  if (paths.includes(key)) {
    for await (const upload of store.listMultipartUploads(key)) {
      if (upload.key !== key) continue;
      await store.abortMultipartUpload(upload);
      result.aborted += 1;
    }
  }
  const sizes = new Map<string, number>();
  for (const path of paths) {
    const stat = await store.stat(path).catch(() => undefined);
    if (stat) sizes.set(path, stat.size);
  }
  if (sizes.size === 0) return result;
  const outcome = await store.deleteMany([...sizes.keys()]);
  if (outcome.failed.length > 0) throw new Error(`${outcome.failed.length} segments not deleted: ${outcome.failed[0]!.error.message}`, { cause: outcome.failed[0]!.error });
  result.objects = outcome.deleted.length;
  result.bytes = outcome.deleted.reduce((sum, k) => sum + (sizes.get(k) ?? 0), 0);
  return result;
}
