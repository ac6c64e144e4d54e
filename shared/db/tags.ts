/**
 * Tags with lifetimes (Quay's time machine). A row is alive while `lifetime_end_ms` is NULL or in
 * the future. Moving a tag ends its alive row (end = now) and starts a new one; deleting ends it.
 * Ended rows stay as history until they leave the namespace's time machine window, then GC
 * collects them. Hidden tags (`$temp-...`) keep untagged manifests alive and are never listed.
 * Tag moves in one repository are serialized by a transaction advisory lock, as in Quay.
 */
import { randomUUID } from 'node:crypto';
import type { ManifestHeadRow, ManifestRow } from './manifests.ts';
import { ATTACHED_FIRST_PARAM, type AttachedLookup } from './permissions.ts';
import type { Queryable } from './pool.ts';

const ALIVE = '(t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > $3)';

/** A tag row that a change ended. */
export interface EndedTag {
  id: number;
  name: string;
  manifest_id: number | null;
  hidden: boolean;
  lifetime_end_ms: number;
}

/** Thrown when a change would move or delete an immutable tag. */
export class TagImmutableError extends Error {
  constructor(readonly tag: string) {
    super(`tag "${tag}" is immutable`);
    this.name = 'TagImmutableError';
  }
}

// The pull path's queries are named (prepared once per connection): planning costs more than
// running them, and a pull is the most frequent request a registry serves. A prepared statement
// gets a generic plan that cannot use `end > $3` to skip a busy tag's history, so the alive row is
// found by two index probes instead: the open row (partial unique index tag_alive), else a row
// ending in the future; at most one row of a name is alive.
const taggedManifestFrom = (repository: string, name: string, now: string): string => `FROM ((SELECT t.manifest_id FROM tag t WHERE t.repository_id = ${repository} AND t.name = ${name} AND t.lifetime_end_ms IS NULL AND NOT t.hidden)
  UNION ALL (SELECT t.manifest_id FROM tag t WHERE t.repository_id = ${repository} AND t.name = ${name} AND t.lifetime_end_ms > ${now} AND NOT t.hidden)
  LIMIT 1) alive JOIN manifest m ON m.id = alive.manifest_id`;
const TAGGED_MANIFEST = taggedManifestFrom('$1', '$2', '$3');
const MANIFEST_COLUMNS = 'm.id, m.digest, m.media_type, m.manifest_bytes, m.layers_compressed_size';
const MANIFEST_HEAD_COLUMNS = 'm.id, m.digest, m.media_type, octet_length(m.manifest_bytes) AS size';
const ATTACHED_TAGGED_MANIFEST = taggedManifestFrom('repo.id', `$${ATTACHED_FIRST_PARAM}`, `$${ATTACHED_FIRST_PARAM + 1}`);

/** The manifest (with bytes) the alive, visible tag `name` of a repository points at, or undefined. One indexed query. */
export async function getTaggedManifest(db: Queryable, repositoryId: number, name: string, nowMs: number): Promise<ManifestRow | undefined> {
  const { rows } = await db.query<ManifestRow>({
    name: 'tags.getTaggedManifest',
    text: `SELECT ${MANIFEST_COLUMNS} ${TAGGED_MANIFEST}`,
    values: [repositoryId, name, nowMs],
  });
  return rows[0];
}

/** Like getTaggedManifest without the bytes (HEAD). */
export async function headTaggedManifest(db: Queryable, repositoryId: number, name: string, nowMs: number): Promise<ManifestHeadRow | undefined> {
  const { rows } = await db.query<ManifestHeadRow>({
    name: 'tags.headTaggedManifest',
    text: `SELECT ${MANIFEST_HEAD_COLUMNS} ${TAGGED_MANIFEST}`,
    values: [repositoryId, name, nowMs],
  });
  return rows[0];
}

/**
 * getTaggedManifest (or headTaggedManifest, `head`) as a lookup attached to the access check
 * (permissions.ts): the same two index probes, on the repository the check finds.
 */
export function taggedManifestLookup(name: string, nowMs: number, head: boolean): AttachedLookup {
  return head
    ? { name: 'tags.headTaggedManifest', sql: `SELECT ${MANIFEST_HEAD_COLUMNS} ${ATTACHED_TAGGED_MANIFEST}`, values: [name, nowMs] }
    : { name: 'tags.getTaggedManifest', sql: `SELECT ${MANIFEST_COLUMNS} ${ATTACHED_TAGGED_MANIFEST}`, values: [name, nowMs] };
}

async function lockTagMoves(tx: Queryable, repositoryId: number): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('retarget_tag:' || $1::text, 0))`, [repositoryId]);
}

// Ends rows at `now`, or 1 ms after the newest ended row of the same name when that is also `now`
// (two moves in one millisecond), because (repository, name, lifetime_end_ms) is unique.
const END_AT = `GREATEST($3::bigint, COALESCE((SELECT max(d.lifetime_end_ms) + 1 FROM tag d
  WHERE d.repository_id = t.repository_id AND d.name = t.name AND d.lifetime_end_ms <= $3), $3))`;

/**
 * Points tag `name` at `manifestId`: ends the alive row (if it points elsewhere) and starts a new
 * one. A tag already pointing there without an expiry is left as it is (`unchanged`).
 * TagImmutableError when the alive row is immutable. Call inside a transaction.
 */
export async function setTag(
  tx: Queryable, input: { repositoryId: number; name: string; manifestId: number; nowMs: number },
): Promise<{ unchanged: boolean; ended: EndedTag[] }> {
  await lockTagMoves(tx, input.repositoryId);
  const { rows: alive } = await tx.query<{ manifest_id: number | null; lifetime_end_ms: number | null; immutable: boolean }>(
    `SELECT t.manifest_id, t.lifetime_end_ms, t.immutable FROM tag t
     WHERE t.repository_id = $1 AND t.name = $2 AND ${ALIVE} AND NOT t.hidden`, [input.repositoryId, input.name, input.nowMs]);
  if (alive.length === 1 && alive[0]!.manifest_id === input.manifestId && alive[0]!.lifetime_end_ms === null) return { unchanged: true, ended: [] };
  if (alive.some((row) => row.immutable)) throw new TagImmutableError(input.name);
  const ended = await endWhere(tx, `t.name = $2 AND NOT t.hidden`, [input.repositoryId, input.name, input.nowMs]);
  await tx.query(
    `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms) VALUES ($1, $2, $3, $4)`,
    [input.name, input.repositoryId, input.manifestId, Math.max(input.nowMs, ...ended.map((t) => t.lifetime_end_ms))]);
  return { unchanged: false, ended };
}

/**
 * Quay's reset_child_manifest_expiration (RESET_CHILD_MANIFEST_EXPIRATION, and the permanent
 * delete's include_submanifests): the `$temp-` hidden tags keeping the child manifests of
 * `manifestIds` alive end at `endMs`, never later than they already end. Without it an index's
 * children outlive the deleted index by their own temp tag (up to PUSH_TEMP_TAG_EXPIRATION_SEC).
 * A child another tag or index still references stays: GC checks those, not this tag.
 */
export async function resetChildManifestExpiration(
  tx: Queryable, input: { repositoryId: number; manifestIds: readonly number[]; endMs: number },
): Promise<number> {
  if (input.manifestIds.length === 0) return 0;
  const { rowCount } = await tx.query(
    `UPDATE tag t SET lifetime_end_ms = $3
     WHERE t.repository_id = $1 AND t.hidden AND t.name LIKE '$temp-%' AND t.lifetime_end_ms > $3
       AND t.manifest_id IN (SELECT mc.child_manifest_id FROM manifestchild mc WHERE mc.repository_id = $1 AND mc.manifest_id = ANY($2::bigint[]))`,
    [input.repositoryId, input.manifestIds, input.endMs]);
  return rowCount ?? 0;
}

/** Ends the alive, visible tag `name`; returns the ended rows (empty when there was none). TagImmutableError when immutable. */
export async function endTag(tx: Queryable, input: { repositoryId: number; name: string; nowMs: number }): Promise<EndedTag[]> {
  await lockTagMoves(tx, input.repositoryId);
  return endWhere(tx, `t.name = $2 AND NOT t.hidden`, [input.repositoryId, input.name, input.nowMs], true);
}

/** Ends every alive tag (hidden ones too) pointing at `manifestId`; returns them. TagImmutableError when one is immutable. */
export async function endManifestTags(tx: Queryable, input: { repositoryId: number; manifestId: number; nowMs: number }): Promise<EndedTag[]> {
  await lockTagMoves(tx, input.repositoryId);
  return endWhere(tx, `t.manifest_id = $2`, [input.repositoryId, input.manifestId, input.nowMs], true);
}

async function endWhere(tx: Queryable, condition: string, params: [number, string | number, number], refuseImmutable = false): Promise<EndedTag[]> {
  if (refuseImmutable) {
    const { rows } = await tx.query<{ name: string }>(
      `SELECT t.name FROM tag t WHERE t.repository_id = $1 AND ${condition} AND ${ALIVE} AND t.immutable LIMIT 1`, params);
    if (rows[0]) throw new TagImmutableError(rows[0].name);
  }
  const { rows } = await tx.query<EndedTag>(
    `UPDATE tag t SET lifetime_end_ms = ${END_AT}
     WHERE t.repository_id = $1 AND ${condition} AND ${ALIVE}
     RETURNING t.id, t.name, t.manifest_id, t.hidden, t.lifetime_end_ms`, params);
  return rows;
}

/**
 * Keeps `manifestId` alive with a hidden tag until `endMs` (null: forever, for referrers), unless
 * an alive tag already keeps it that long (Quay's create_temporary_tag_if_necessary). Returns the
 * new hidden tag's end, `null` for a tag without end, or undefined when no tag was needed.
 */
export async function keepManifestAlive(
  tx: Queryable, input: { repositoryId: number; manifestId: number; nowMs: number; endMs: number | null },
): Promise<{ endMs: number | null } | undefined> {
  const { rows } = await tx.query<{ covered: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM tag t WHERE t.repository_id = $1 AND t.manifest_id = $2 AND ${ALIVE}
       AND (t.lifetime_end_ms IS NULL OR ($4::bigint IS NOT NULL AND t.lifetime_end_ms >= $4))) AS covered`,
    [input.repositoryId, input.manifestId, input.nowMs, input.endMs]);
  if (rows[0]!.covered) return undefined;
  await tx.query(
    `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms, hidden) VALUES ($1, $2, $3, $4, $5, true)`,
    [`$temp-${randomUUID()}`, input.repositoryId, input.manifestId, input.nowMs, input.endMs]);
  return { endMs: input.endMs };
}

/** Names of the alive, visible tags of a repository after `last` (exclusive), in order, at most `limit`. */
export async function listTagNames(db: Queryable, input: { repositoryId: number; nowMs: number; last?: string; limit: number }): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT t.name FROM tag t WHERE t.repository_id = $1 AND ($2::text IS NULL OR t.name > $2) AND ${ALIVE} AND NOT t.hidden
     ORDER BY t.name LIMIT $4`, [input.repositoryId, input.last ?? null, input.nowMs, input.limit]);
  return rows.map((row) => row.name);
}
