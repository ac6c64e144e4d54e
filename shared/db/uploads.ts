/**
 * Upload sessions (`blobupload`): the state of a chunked blob upload, so a session survives a
 * front-end restart. Bytes live in storage; this row says how many were received, which multipart
 * write holds them, and where the small unflushed tail is staged.
 *
 * Concurrency: a request that appends to a session first *claims* it (a compare-and-set on the byte
 * count plus a claim token with an expiry in `storage_metadata`), so two requests never write the
 * same parts, without holding a database connection while bytes stream.
 */
import type { Queryable } from './pool.ts';

/** Where a session's bytes are: the multipart write, parts written so far, the staged tail. */
export interface UploadStorageState {
  /** Backend id of the multipart write to `uploads/<uuid>`; absent until the first part is written. */
  uploadId?: string;
  /** Parts written to the multipart write (numbered 1..parts). */
  parts: number;
  /** Bytes received after the last part, staged in their own object until a part can take them. */
  tail?: { key: string; bytes: number };
}

interface StoredMetadata extends UploadStorageState {
  claim?: { token: string; untilMs: number };
}

/** One upload session. */
export interface UploadRow {
  id: number;
  repository_id: number;
  uuid: string;
  /** Bytes received and stored so far. */
  byte_count: number;
  location_id: number;
  chunk_count: number;
  storage: UploadStorageState;
  created: Date;
}

interface RawUploadRow extends Omit<UploadRow, 'storage'> {
  storage_metadata: StoredMetadata;
}

const COLUMNS = 'id, repository_id, uuid::text AS uuid, byte_count, location_id, chunk_count, storage_metadata, created';

function toRow(raw: RawUploadRow): UploadRow {
  const { storage_metadata: meta, ...rest } = raw;
  const { claim: _claim, ...storage } = meta;
  return { ...rest, storage: { ...storage, parts: storage.parts ?? 0 } };
}

/** Starts a session for repository `repositoryId` writing to location `locationId`. */
export async function createUpload(db: Queryable, input: { repositoryId: number; uuid: string; locationId: number; at: Date }): Promise<UploadRow> {
  const { rows } = await db.query<RawUploadRow>(
    `INSERT INTO blobupload (repository_id, uuid, location_id, storage_metadata, created, updated)
     VALUES ($1, $2, $3, '{"parts":0}', $4, $4) RETURNING ${COLUMNS}`,
    [input.repositoryId, input.uuid, input.locationId, input.at]);
  return toRow(rows[0]!);
}

/** The session `uuid` of repository `repositoryId`, or undefined. */
export async function getUpload(db: Queryable, repositoryId: number, uuid: string): Promise<UploadRow | undefined> {
  const { rows } = await db.query<RawUploadRow>(`SELECT ${COLUMNS} FROM blobupload WHERE repository_id = $1 AND uuid = $2`, [repositoryId, uuid]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

/**
 * Claims session `uuid` for one appending request until `untilMs`: succeeds only when nobody holds
 * an unexpired claim and (when given) the session holds exactly `byteCount` bytes. Returns the
 * session as claimed, or undefined when the claim was refused.
 */
export async function claimUpload(
  db: Queryable, input: { repositoryId: number; uuid: string; token: string; nowMs: number; untilMs: number; byteCount?: number },
): Promise<UploadRow | undefined> {
  const { rows } = await db.query<RawUploadRow>(
    `UPDATE blobupload SET storage_metadata = storage_metadata || jsonb_build_object('claim', jsonb_build_object('token', $3::text, 'untilMs', $5::bigint))
     WHERE repository_id = $1 AND uuid = $2 AND ($6::bigint IS NULL OR byte_count = $6)
       AND (storage_metadata->'claim' IS NULL OR (storage_metadata->'claim'->>'untilMs')::bigint < $4)
     RETURNING ${COLUMNS}`,
    [input.repositoryId, input.uuid, input.token, input.nowMs, input.untilMs, input.byteCount ?? null]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

/** Extends a held claim; false when the claim was lost (expired and taken by another request). */
export async function renewUploadClaim(db: Queryable, input: { uuid: string; token: string; untilMs: number }): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE blobupload SET storage_metadata = jsonb_set(storage_metadata, '{claim,untilMs}', to_jsonb($3::bigint))
     WHERE uuid = $1 AND storage_metadata->'claim'->>'token' = $2`, [input.uuid, input.token, input.untilMs]);
  return rowCount === 1;
}

/**
 * Saves the progress of the claimed session and releases the claim (or keeps it with `keepClaim`).
 * False when the claim was lost, in which case nothing is written.
 */
export async function saveUploadProgress(
  db: Queryable,
  input: { uuid: string; token: string; byteCount: number; chunkCount: number; storage: UploadStorageState; at: Date; keepClaim?: boolean },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE blobupload SET byte_count = $3, chunk_count = $4, updated = $6,
       storage_metadata = CASE WHEN $7 THEN $5::jsonb || jsonb_build_object('claim', storage_metadata->'claim') ELSE $5::jsonb END
     WHERE uuid = $1 AND storage_metadata->'claim'->>'token' = $2`,
    [input.uuid, input.token, input.byteCount, input.chunkCount, JSON.stringify(input.storage), input.at, input.keepClaim ?? false]);
  return rowCount === 1;
}

/** Releases a claim without changing the session (a request that failed before writing). */
export async function releaseUploadClaim(db: Queryable, input: { uuid: string; token: string }): Promise<void> {
  await db.query(`UPDATE blobupload SET storage_metadata = storage_metadata - 'claim' WHERE uuid = $1 AND storage_metadata->'claim'->>'token' = $2`,
    [input.uuid, input.token]);
}

/** Deletes session `uuid`; returns whether it existed. */
export async function deleteUpload(db: Queryable, uuid: string): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM blobupload WHERE uuid = $1`, [uuid]);
  return rowCount === 1;
}
