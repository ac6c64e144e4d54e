/**
 * Manifests of a repository (exact bytes, keyed by (repository, digest)), their links to blobs
 * (`manifestblob`) and child manifests (`manifestchild`), and the referrers index (`subject`).
 */
import { ATTACHED_FIRST_PARAM, type AttachedLookup } from './permissions.ts';
import type { Queryable } from './pool.ts';

/** A stored manifest as the registry serves it. */
export interface ManifestRow {
  id: number;
  digest: string;
  media_type: string;
  manifest_bytes: Buffer;
  layers_compressed_size: number | null;
}

/** What a HEAD needs: no bytes. */
export interface ManifestHeadRow {
  id: number;
  digest: string;
  media_type: string;
  size: number;
}

export interface NewManifest {
  repositoryId: number;
  digest: string;
  mediaType: string;
  bytes: Buffer;
  configMediaType: string | null;
  artifactType: string | null;
  subject: string | null;
  layersCompressedSize: number;
}

/**
 * Inserts the manifest unless (repository, digest) exists; returns its id and whether this call
 * created it. Concurrent identical pushes both succeed and agree on one row.
 *
 * An existing row is taken FOR KEY SHARE, so GC (which locks FOR UPDATE SKIP LOCKED) leaves it to
 * a later pass instead of deleting it under the push. If GC locked it first, the lock waits for
 * GC's commit and finds the row gone; the insert is then tried again and creates it anew (the push
 * holds its blobs, so nothing it needs is missing). Quay loses this race: its push fails.
 */
export async function insertManifest(tx: Queryable, m: NewManifest): Promise<{ id: number; created: boolean }> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const { rows } = await tx.query<{ id: number }>(
      `INSERT INTO manifest (repository_id, digest, media_type, manifest_bytes, config_media_type, artifact_type, subject, layers_compressed_size)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id`,
      [m.repositoryId, m.digest, m.mediaType, m.bytes, m.configMediaType, m.artifactType, m.subject, m.layersCompressedSize]);
    if (rows[0]) return { id: rows[0].id, created: true };
    const existing = await tx.query<{ id: number }>(
      `SELECT id FROM manifest WHERE repository_id = $1 AND digest = $2 FOR KEY SHARE`, [m.repositoryId, m.digest]);
    if (existing.rows[0]) return { id: existing.rows[0].id, created: false };
  }
  // Five deletions of the same manifest between two statements each: not a race, a bug elsewhere.
  throw new Error(`manifest ${m.digest} of repository ${m.repositoryId} kept disappearing during the push`);
}

/** Links manifest `manifestId` to the blobs `blobIds` (idempotent). */
export async function linkManifestBlobs(tx: Queryable, repositoryId: number, manifestId: number, blobIds: readonly number[]): Promise<void> {
  if (blobIds.length === 0) return;
  await tx.query(
    `INSERT INTO manifestblob (repository_id, manifest_id, blob_id) SELECT $1, $2, unnest($3::bigint[])
     ON CONFLICT (manifest_id, blob_id) DO NOTHING`, [repositoryId, manifestId, blobIds]);
}

/** Links index `manifestId` to its child manifests `childIds` (idempotent). */
export async function linkManifestChildren(tx: Queryable, repositoryId: number, manifestId: number, childIds: readonly number[]): Promise<void> {
  if (childIds.length === 0) return;
  await tx.query(
    `INSERT INTO manifestchild (repository_id, manifest_id, child_manifest_id) SELECT $1, $2, unnest($3::bigint[])
     ON CONFLICT (manifest_id, child_manifest_id) DO NOTHING`, [repositoryId, manifestId, childIds]);
}

/**
 * Of `digests`, the manifests stored in repository `repositoryId`: digest -> id. With
 * `forKeyShare` (a push about to link them) the rows are locked so GC skips them until commit.
 */
export async function findManifestIds(db: Queryable, repositoryId: number, digests: readonly string[], options: { forKeyShare?: boolean } = {}): Promise<Map<string, number>> {
  if (digests.length === 0) return new Map();
  const { rows } = await db.query<{ id: number; digest: string }>(
    `SELECT id, digest FROM manifest WHERE repository_id = $1 AND digest = ANY($2)${options.forKeyShare ? ' ORDER BY id FOR KEY SHARE' : ''}`, [repositoryId, digests]);
  return new Map(rows.map((row) => [row.digest, row.id]));
}

/**
 * Quay's lookup_manifest (allow_hidden): a manifest is served while it is reachable, that is an
 * alive tag (visible or hidden: a push-by-digest lease, a referrer's tag) points at it, or at an
 * index that lists it as a child. A manifest whose tags all ended stays a row (for the time
 * machine, until GC) but is unknown to pulls at once. `m` is the manifest, `$3` the instant.
 */
const reachableAt = (now: string): string => `(EXISTS (SELECT 1 FROM tag t WHERE t.manifest_id = m.id AND (t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > ${now}))
  OR EXISTS (SELECT 1 FROM manifestchild c JOIN tag p ON p.manifest_id = c.manifest_id
             WHERE c.child_manifest_id = m.id AND (p.lifetime_end_ms IS NULL OR p.lifetime_end_ms > ${now})))`;
const REACHABLE = reachableAt('$3');
const ATTACHED_BY_DIGEST = `FROM manifest m WHERE m.repository_id = repo.id AND m.digest = $${ATTACHED_FIRST_PARAM} AND ${reachableAt(`$${ATTACHED_FIRST_PARAM + 1}`)}`;

// Pull-path queries are named (prepared once per connection): planning costs more than running them.

/** The manifest `digest` of repository `repositoryId` with its bytes, while reachable at `nowMs`; else undefined. One indexed query. */
export async function getManifestByDigest(db: Queryable, repositoryId: number, digest: string, nowMs: number): Promise<ManifestRow | undefined> {
  const { rows } = await db.query<ManifestRow>({
    name: 'manifests.getManifestByDigest',
    text: `SELECT m.id, m.digest, m.media_type, m.manifest_bytes, m.layers_compressed_size FROM manifest m
           WHERE m.repository_id = $1 AND m.digest = $2 AND ${REACHABLE}`,
    values: [repositoryId, digest, nowMs],
  });
  return rows[0];
}

/** Like getManifestByDigest without the bytes (HEAD, and DELETE's lookup). */
export async function headManifestByDigest(db: Queryable, repositoryId: number, digest: string, nowMs: number): Promise<ManifestHeadRow | undefined> {
  const { rows } = await db.query<ManifestHeadRow>({
    name: 'manifests.headManifestByDigest',
    text: `SELECT m.id, m.digest, m.media_type, octet_length(m.manifest_bytes) AS size FROM manifest m
           WHERE m.repository_id = $1 AND m.digest = $2 AND ${REACHABLE}`,
    values: [repositoryId, digest, nowMs],
  });
  return rows[0];
}

/**
 * getManifestByDigest (or headManifestByDigest, `head`) as a lookup attached to the access check
 * (permissions.ts), on the repository the check finds.
 */
export function manifestByDigestLookup(digest: string, nowMs: number, head: boolean): AttachedLookup {
  return head
    ? { name: 'manifests.headManifestByDigest', sql: `SELECT m.id, m.digest, m.media_type, octet_length(m.manifest_bytes) AS size ${ATTACHED_BY_DIGEST}`, values: [digest, nowMs] }
    : { name: 'manifests.getManifestByDigest', sql: `SELECT m.id, m.digest, m.media_type, m.manifest_bytes, m.layers_compressed_size ${ATTACHED_BY_DIGEST}`, values: [digest, nowMs] };
}

/** A manifest that refers to a subject, as the referrers API lists it. */
export interface ReferrerRow {
  digest: string;
  media_type: string;
  artifact_type: string | null;
  size: number;
  manifest_bytes: Buffer;
}

/**
 * Manifests of repository `repositoryId` whose subject is `subject` and that are reachable at
 * instant `nowMs` (as getManifestByDigest decides), optionally only those of `artifactType`;
 * oldest first.
 */
export async function listReferrers(
  db: Queryable, input: { repositoryId: number; subject: string; artifactType?: string; nowMs: number; limit: number },
): Promise<ReferrerRow[]> {
  const { rows } = await db.query<ReferrerRow>(
    `SELECT m.digest, m.media_type, m.artifact_type, octet_length(m.manifest_bytes) AS size, m.manifest_bytes
     FROM manifest m
     WHERE m.repository_id = $1 AND m.subject = $2 AND ($4::text IS NULL OR m.artifact_type = $4) AND ${REACHABLE}
     ORDER BY m.id LIMIT $5`,
    [input.repositoryId, input.subject, input.nowMs, input.artifactType ?? null, input.limit]);
  return rows;
}

/** The digests of manifests `ids`: id -> digest (missing ids are absent). */
export async function manifestDigestsByIds(db: Queryable, ids: readonly number[]): Promise<Map<number, string>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<{ id: number; digest: string }>(`SELECT id, digest FROM manifest WHERE id = ANY($1)`, [ids]);
  return new Map(rows.map((row) => [row.id, row.digest]));
}
