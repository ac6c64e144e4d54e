/**
 * Blobs: one `imagestorage` row per content digest, its placements (which storage locations hold
 * the bytes) and the links that make a blob visible in a repository: `manifestblob` rows, or a live
 * upload lease (`uploadedblob`) protecting a blob pushed or mounted before any manifest uses it.
 *
 * Glossary: location = a DISTRIBUTED_STORAGE_CONFIG key (row in imagestoragelocation); placement =
 * "the bytes are present at that location"; lease = uploadedblob row, live until `expires_at`.
 */
import { ATTACHED_FIRST_PARAM, type AttachedLookup } from './permissions.ts';
import type { Queryable } from './pool.ts';

/** A blob as the front end serves and links it. */
export interface BlobRow {
  id: number;
  uuid: string;
  digest: string;
  /** Size in bytes (Quay's image_size: the stored, compressed size). */
  size: number;
  /** Ids of the locations holding the bytes; empty for a placeholder row. */
  location_ids: number[];
}

const BLOB_COLUMNS = `s.id, s.uuid, s.content_checksum AS digest, s.image_size AS size,
  ARRAY(SELECT p.location_id FROM imagestorageplacement p WHERE p.storage_id = s.id ORDER BY p.location_id) AS location_ids`;

/** Whether the blob `s` is linked to repository $1 at instant $3 (a manifest link or a live lease). */
const linkedToRepository = (repository: string, at: string): string => `(EXISTS (SELECT 1 FROM manifestblob mb WHERE mb.repository_id = ${repository} AND mb.blob_id = s.id)
  OR EXISTS (SELECT 1 FROM uploadedblob ub WHERE ub.repository_id = ${repository} AND ub.blob_id = s.id AND ub.expires_at > ${at}))`;
const LINKED_TO_REPOSITORY = linkedToRepository('$1', '$3');

/**
 * Ensures one imagestoragelocation row per name (Quay inserts them at boot) and returns name -> id.
 * Idempotent and safe to run from many processes at once.
 */
export async function ensureLocations(db: Queryable, names: readonly string[]): Promise<Map<string, number>> {
  await db.query(`INSERT INTO imagestoragelocation (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING`, [names]);
  const { rows } = await db.query<{ id: number; name: string }>(`SELECT id, name FROM imagestoragelocation WHERE name = ANY($1)`, [names]);
  return new Map(rows.map((row) => [row.name, row.id]));
}

/** The blob `digest` if repository `repositoryId` may serve it at instant `at`, else undefined. */
export async function findRepositoryBlob(db: Queryable, repositoryId: number, digest: string, at: Date): Promise<BlobRow | undefined> {
  // Named (prepared once per connection): every blob pull and HEAD runs it.
  const { rows } = await db.query<BlobRow>({
    name: 'blobs.findRepositoryBlob',
    text: `SELECT ${BLOB_COLUMNS} FROM imagestorage s WHERE s.content_checksum = $2 AND ${LINKED_TO_REPOSITORY}`,
    values: [repositoryId, digest, at],
  });
  return rows[0];
}

const ATTACHED_REPOSITORY_BLOB = `SELECT ${BLOB_COLUMNS} FROM imagestorage s WHERE s.content_checksum = $${ATTACHED_FIRST_PARAM}
  AND ${linkedToRepository('repo.id', `$${ATTACHED_FIRST_PARAM + 1}`)}`;

/** findRepositoryBlob as a lookup attached to the access check (permissions.ts), on the repository the check finds. */
export function repositoryBlobLookup(digest: string, at: Date): AttachedLookup {
  return { name: 'blobs.findRepositoryBlob', sql: ATTACHED_REPOSITORY_BLOB, values: [digest, at] };
}
/**
 * Of `digests`, the blobs linked to repository `repositoryId` at instant `at`, by digest. With
 * `forKeyShare` (a manifest push about to link them) the rows are locked until commit, so GC,
 * which locks FOR UPDATE SKIP LOCKED, leaves them for a later pass; a row GC locked first is
 * waited for and, once deleted, missing from the result.
 *
 * `forKeyShare` also counts a lease that has expired but whose row GC has not removed yet, as
 * Quay's manifest path does (it looks `uploadedblob` up without its expiry): GC removes an expired
 * lease only together with its blob, or in its own pass before the blob's, and either way under the
 * row lock this query waits for, so the blob is either still there and held by this push, or gone
 * from the result. A push that took longer than its lease then still links what it uploaded.
 */
export async function findRepositoryBlobs(db: Queryable, repositoryId: number, digests: readonly string[], at: Date, options: { forKeyShare?: boolean } = {}): Promise<Map<string, BlobRow>> {
  if (digests.length === 0) return new Map();
  const lock = options.forKeyShare ? ' ORDER BY s.id FOR KEY SHARE OF s' : '';
  // -infinity: every lease row counts, expired or not (the locked read above is what makes it safe).
  const { rows } = await db.query<BlobRow>(
    `SELECT ${BLOB_COLUMNS} FROM imagestorage s WHERE s.content_checksum = ANY($2) AND ${LINKED_TO_REPOSITORY}${lock}`,
    [repositoryId, digests, options.forKeyShare ? '-infinity' : at]);
  return new Map(rows.map((row) => [row.digest, row]));
}

/** The blob row of `digest` wherever it is linked, or undefined. */
export async function getBlob(db: Queryable, digest: string): Promise<BlobRow | undefined> {
  const { rows } = await db.query<BlobRow>(`SELECT ${BLOB_COLUMNS} FROM imagestorage s WHERE s.content_checksum = $1`, [digest]);
  return rows[0];
}

/**
 * Records that the bytes of `digest` (`size` bytes) are at `locationId`: the imagestorage row
 * (created if new) and its placement (idempotent), with the object's storage `etag` when the
 * write reported one (kept otherwise). Returns the blob id. Call inside the transaction that
 * holds `lockBlobDigest(digest)`.
 */
export async function recordBlobPlacement(
  tx: Queryable, input: { digest: string; size: number; locationId: number; etag?: string },
): Promise<{ id: number; uuid: string }> {
  const { rows } = await tx.query<{ id: number; uuid: string }>(
    `WITH inserted AS (
       INSERT INTO imagestorage (content_checksum, image_size) VALUES ($1, $2)
       ON CONFLICT (content_checksum) DO NOTHING RETURNING id, uuid)
     SELECT id, uuid FROM inserted UNION ALL SELECT id, uuid FROM imagestorage WHERE content_checksum = $1 LIMIT 1`,
    [input.digest, input.size]);
  // A row committed by a writer that skipped the digest lock is invisible to this statement's
  // snapshot; a second statement sees it.
  const blob = rows[0] ?? (await tx.query<{ id: number; uuid: string }>(
    `SELECT id, uuid FROM imagestorage WHERE content_checksum = $1`, [input.digest])).rows[0]!;
  await tx.query(
    `INSERT INTO imagestorageplacement (storage_id, location_id, etag) VALUES ($1, $2, $3)
     ON CONFLICT (storage_id, location_id) DO UPDATE SET etag = EXCLUDED.etag WHERE EXCLUDED.etag IS NOT NULL`,
    [blob.id, input.locationId, input.etag ?? null]);
  return blob;
}

/**
 * Protects blob `blobId` in repository `repositoryId` until `expiresAt`: extends the repository's
 * newest lease on that blob (never shortening it) or starts a new one.
 */
export async function leaseBlob(tx: Queryable, input: { repositoryId: number; blobId: number; at: Date; expiresAt: Date }): Promise<void> {
  const { rowCount } = await tx.query(
    `UPDATE uploadedblob SET uploaded_at = $3, expires_at = GREATEST(expires_at, $4)
     WHERE id = (SELECT id FROM uploadedblob WHERE repository_id = $1 AND blob_id = $2 ORDER BY expires_at DESC LIMIT 1)`,
    [input.repositoryId, input.blobId, input.at, input.expiresAt]);
  if (rowCount === 0) {
    await tx.query(`INSERT INTO uploadedblob (repository_id, blob_id, uploaded_at, expires_at) VALUES ($1, $2, $3, $4)`,
      [input.repositoryId, input.blobId, input.at, input.expiresAt]);
  }
}
