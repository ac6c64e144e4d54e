/**
 * What storage holds under `uploads/` that no session owns: multipart writes (S3/RadosGW
 * ListMultipartUploads, GCS composed parts, Azure block markers, part directories on disk) and
 * objects (staged chunks, finished uploads whose move never happened) older than a threshold.
 * Ownership is decided by the database, never by age alone: anything whose upload id still has a
 * `blobupload` row is left to the session pass, so a live upload is never touched.
 */
import type { Queryable } from '../../shared/db/pool.ts';
import type { IncompleteUpload, ObjectStat, ObjectStore, UncommittedBlob } from '../../shared/storage/types.ts';

/** The folder every upload in progress lives in (Quay's `uploads/`). */
export const UPLOADS_PREFIX = 'uploads/';

const UPLOAD_UUID = /^uploads\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:$|\.)/;

/** One ownerless item found (dry runs list these). */
export interface StaleItem {
  readonly kind: 'multipart' | 'object' | 'uncommitted';
  readonly key: string;
  /** Initiated (multipart) or last modified (object). */
  readonly at: Date;
  /** Object size, or staged bytes of uncommitted blocks; 0 for a multipart write (its parts are not listed). */
  readonly bytes: number;
}

/** What one sweep of one location did (or, in a dry run, would do). */
export interface SweepResult {
  readonly items: StaleItem[];
  aborted: number;
  objects: number;
  bytes: number;
  /** Items skipped because a session row still owns them. */
  owned: number;
  failed: number;
}

/** The upload id an `uploads/` key belongs to, or undefined for a key of another shape. */
export function uploadUuidOf(key: string): string | undefined {
  return UPLOAD_UUID.exec(key)?.[1];
}

async function ownedUuids(db: Queryable, uuids: readonly string[]): Promise<Set<string>> {
  if (uuids.length === 0) return new Set();
  const { rows } = await db.query<{ uuid: string }>(`SELECT uuid::text AS uuid FROM blobupload WHERE uuid = ANY($1::uuid[])`, [[...new Set(uuids)]]);
  return new Set(rows.map((r) => r.uuid));
}

// Items of one page whose upload id has no row (keys of another shape have no owner).
async function ownerless<T extends { key: string }>(db: Queryable, page: readonly T[]): Promise<{ free: T[]; owned: number }> {
  const owned = await ownedUuids(db, page.map((item) => uploadUuidOf(item.key)).filter((u): u is string => u !== undefined));
  const free = page.filter((item) => !owned.has(uploadUuidOf(item.key) ?? ''));
  return { free, owned: page.length - free.length };
}

async function* pages<T>(items: AsyncIterable<T>, size: number): AsyncIterable<T[]> {
  let page: T[] = [];
  for await (const item of items) {
    page.push(item);
    if (page.length >= size) {
      yield page;
      page = [];
    }
  }
  if (page.length > 0) yield page;
}

function emptyResult(): SweepResult {
  return { items: [], aborted: 0, objects: 0, bytes: 0, owned: 0, failed: 0 };
}

/** Options of one sweep; `keepItems` bounds the list a dry run returns. */
export interface SweepOptions {
  readonly olderThan: Date;
  readonly dryRun?: boolean;
  readonly keepItems?: number;
  readonly pageSize?: number;
  readonly signal?: AbortSignal;
}

/** Aborts the multipart writes under `uploads/` started before `olderThan` that no session owns. */
export async function abortStaleMultipartUploads(db: Queryable, store: ObjectStore, options: SweepOptions): Promise<SweepResult> {
  const result = emptyResult();
  for await (const page of pages<IncompleteUpload>(store.listMultipartUploads(UPLOADS_PREFIX, options.olderThan), options.pageSize ?? 200)) {
    const { free, owned } = await ownerless(db, page);
    result.owned += owned;
    for (const upload of free) {
      if (result.items.length < (options.keepItems ?? 0)) result.items.push({ kind: 'multipart', key: upload.key, at: upload.initiated, bytes: 0 });
      if (options.dryRun) {
        result.aborted += 1;
        continue;
      }
      try {
        await store.abortMultipartUpload(upload);
        result.aborted += 1;
      } catch {
        result.failed += 1;
      }
    }
    if (options.signal?.aborted) break;
  }
  return result;
}

/** Deletes the objects under `uploads/` last modified before `olderThan` that no session owns. */
export async function sweepUploadsFolder(db: Queryable, store: ObjectStore, options: SweepOptions): Promise<SweepResult> {
  const result = emptyResult();
  const old = filterOld(store.list(UPLOADS_PREFIX), options.olderThan);
  for await (const page of pages<ObjectStat>(old, options.pageSize ?? 200)) {
    const { free, owned } = await ownerless(db, page);
    result.owned += owned;
    for (const object of free.slice(0, Math.max(0, (options.keepItems ?? 0) - result.items.length))) {
      result.items.push({ kind: 'object', key: object.key, at: object.lastModified, bytes: object.size });
    }
    if (options.dryRun) {
      result.objects += free.length;
      result.bytes += free.reduce((sum, o) => sum + o.size, 0);
    } else if (free.length > 0) {
      const outcome = await store.deleteMany(free.map((o) => o.key));
      const gone = new Set(outcome.deleted);
      result.objects += gone.size;
      result.bytes += free.filter((o) => gone.has(o.key)).reduce((sum, o) => sum + o.size, 0);
      result.failed += outcome.failed.length;
    }
    if (options.signal?.aborted) break;
  }
  return result;
}

/**
 * Discards the staged blocks under `uploads/` that no write will commit (Azure; other drivers list
 * none) and no session owns. Runs after the multipart step, which removes the markers of stale
 * writes whose blocks this finds. `objects` counts blobs, `bytes` their staged bytes.
 */
export async function discardUncommittedBlocks(db: Queryable, store: ObjectStore, options: SweepOptions): Promise<SweepResult> {
  const result = emptyResult();
  if (!store.listUncommittedBlobs || !store.discardUncommittedBlob) return result;
  for await (const page of pages<UncommittedBlob>(store.listUncommittedBlobs(UPLOADS_PREFIX, options.olderThan), options.pageSize ?? 200)) {
    const { free, owned } = await ownerless(db, page);
    result.owned += owned;
    for (const blob of free) {
      if (result.items.length < (options.keepItems ?? 0)) result.items.push({ kind: 'uncommitted', key: blob.key, at: blob.at, bytes: blob.bytes });
      if (options.dryRun) {
        result.objects += 1;
        result.bytes += blob.bytes;
        continue;
      }
      try {
        const bytes = await store.discardUncommittedBlob(blob, options.olderThan);
        if (bytes === undefined) continue;
        result.objects += 1;
        result.bytes += bytes;
      } catch {
        result.failed += 1;
      }
    }
    if (options.signal?.aborted) break;
  }
  return result;
}

async function* filterOld(objects: AsyncIterable<ObjectStat>, olderThan: Date): AsyncIterable<ObjectStat> {
  for await (const object of objects) if (object.lastModified < olderThan) yield object;
}
