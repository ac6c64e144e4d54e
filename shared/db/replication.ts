/**
 * What replication reads and writes in the database, shared by the front end (which enqueues on
 * push), the storagereplicationworker (which copies) and the admin commands (backfill, status).
 *
 * Glossary: required locations of a blob = DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS plus the regions
 * (`userregion`) of every namespace that references the blob (a manifest link or an upload lease)
 * (Quay: `get_region_locations(namespace) | default_locations`, per job's namespace). A location is
 * missing a blob when it is required and has no placement.
 */
import pg from 'pg';
import type { Queryable } from './pool.ts';

const { escapeLiteral } = pg;

/** Ids of the locations namespace `namespaceId` replicates to besides the defaults (Quay's `userregion`). */
export async function namespaceRegionIds(db: Queryable, namespaceId: number): Promise<number[]> {
  // Named: every manifest push with replication on runs it.
  const { rows } = await db.query<{ location_id: number }>({
    name: 'replication.namespaceRegionIds',
    text: `SELECT location_id FROM userregion WHERE user_id = $1 ORDER BY location_id`,
    values: [namespaceId],
  });
  return rows.map((r) => r.location_id);
}

/** A blob as replication sees it. */
export interface ReplicationBlob {
  readonly id: number;
  readonly digest: string;
  /** Bytes (`image_size`). */
  readonly size: number;
  /** Names of the locations holding it. */
  readonly placements: string[];
  /** Per location holding it, the storage ETag recorded with its placement, where one was. */
  readonly etags: Record<string, string>;
  /** Names of the region locations of the namespaces referencing it (and of `namespaceId`). */
  readonly regions: string[];
}

/**
 * Blob `storageId` with its placements and the regions it must reach, or undefined when the row
 * is gone (collected). `namespaceId`'s regions count even before its links are visible.
 */
export async function loadReplicationBlob(db: Queryable, storageId: number, namespaceId: number): Promise<ReplicationBlob | undefined> {
  return (await loadReplicationBlobs(db, [{ storageId, namespaceId }]))[0];
}

/** `loadReplicationBlob` for many blobs in one round trip; answers in input order. */
export async function loadReplicationBlobs(
  db: Queryable, items: readonly { storageId: number; namespaceId: number }[],
): Promise<(ReplicationBlob | undefined)[]> {
  const { rows } = await db.query<ReplicationBlob & { ord: number }>({
    name: 'replication.loadBlobs',
    text: BLOBS_SQL('$1::bigint[]', '$2::bigint[]'),
    values: [items.map((i) => i.storageId), items.map((i) => i.namespaceId)],
  });
  return inOrder(rows, items.length);
}

/**
 * SQL: the ReplicationBlob rows of blobs `ids` with the regions of `namespaceIds` (parallel arrays,
 * as SQL expressions), each with its input position `ord`.
 */
function BLOBS_SQL(ids: string, namespaceIds: string): string {
  return `SELECT j.ord, s.id, s.content_checksum AS digest, s.image_size AS size,
            ARRAY(SELECT l.name FROM imagestorageplacement p JOIN imagestoragelocation l ON l.id = p.location_id
                   WHERE p.storage_id = s.id ORDER BY l.name) AS placements,
            (SELECT coalesce(jsonb_object_agg(l.name, p.etag), '{}') FROM imagestorageplacement p JOIN imagestoragelocation l ON l.id = p.location_id
              WHERE p.storage_id = s.id AND p.etag IS NOT NULL) AS etags,
            ARRAY(SELECT DISTINCT l.name FROM userregion ur JOIN imagestoragelocation l ON l.id = ur.location_id
                   WHERE ur.user_id = j.ns OR ur.user_id IN (${REFERENCING_NAMESPACES('s.id')})) AS regions
       FROM unnest(${ids}, ${namespaceIds}) WITH ORDINALITY AS j(id, ns, ord) JOIN imagestorage s ON s.id = j.id`;
}

function inOrder(rows: readonly (ReplicationBlob & { ord: number })[], length: number): (ReplicationBlob | undefined)[] {
  const out: (ReplicationBlob | undefined)[] = Array.from({ length }, () => undefined);
  for (const { ord, ...row } of rows) out[Number(ord) - 1] = { ...row, id: Number(row.id), size: Number(row.size) };
  return out;
}

/** SQL: ids of the namespaces whose repositories reference blob `blob` (manifest links, upload leases). */
function REFERENCING_NAMESPACES(blob: string): string {
  return `SELECT r.namespace_user_id FROM manifestblob mb JOIN repository r ON r.id = mb.repository_id WHERE mb.blob_id = ${blob}
          UNION SELECT r.namespace_user_id FROM uploadedblob ub JOIN repository r ON r.id = ub.repository_id WHERE ub.blob_id = ${blob}`;
}

/** One blob lacking a placement somewhere it is required. */
export interface MissingBlob {
  readonly id: number;
  readonly digest: string;
  readonly size: number;
  /** A namespace referencing it (the job's `namespaceId`). */
  readonly namespaceId: number;
  /** Required locations without a placement. */
  readonly missing: string[];
}

/**
 * One page of blobs (id > `afterId`, in id order, at most `limit` examined) that some required
 * location lacks. Only blobs something references and some location holds are considered:
 * garbage is GC's, and a placeholder row has nothing to copy. Returns the page's last examined
 * id as `nextAfterId` (undefined when the table is exhausted).
 */
export async function findMissingBlobs(
  db: Queryable, input: { afterId: number; limit: number; defaultLocations: readonly string[]; locations: readonly string[] },
): Promise<{ blobs: MissingBlob[]; examined: number; nextAfterId: number | undefined }> {
  const { rows } = await db.query<{ id: number; digest: string; size: string; namespace_id: number | null; missing: string[] | null }>(
    `WITH page AS (
       SELECT s.id, s.content_checksum, s.image_size FROM imagestorage s WHERE s.id > $1 ORDER BY s.id LIMIT $2),
     refs AS (
       SELECT p.id, r.namespace_user_id AS ns FROM page p JOIN manifestblob mb ON mb.blob_id = p.id JOIN repository r ON r.id = mb.repository_id
       UNION SELECT p.id, r.namespace_user_id FROM page p JOIN uploadedblob ub ON ub.blob_id = p.id AND ub.expires_at > now() JOIN repository r ON r.id = ub.repository_id),
     required AS (
       SELECT DISTINCT p.id, l.id AS location_id, l.name FROM page p JOIN refs f ON f.id = p.id
         JOIN imagestoragelocation l ON l.name = ANY($3::text[])
       UNION SELECT f.id, l.id, l.name FROM refs f JOIN userregion ur ON ur.user_id = f.ns JOIN imagestoragelocation l ON l.id = ur.location_id)
     SELECT p.id, p.content_checksum AS digest, p.image_size AS size,
            (SELECT min(f.ns) FROM refs f WHERE f.id = p.id) AS namespace_id,
            ARRAY(SELECT q.name FROM required q WHERE q.id = p.id AND q.name = ANY($4::text[])
                     AND NOT EXISTS (SELECT 1 FROM imagestorageplacement x WHERE x.storage_id = p.id AND x.location_id = q.location_id)
                   ORDER BY q.name) AS missing
       FROM page p
      WHERE EXISTS (SELECT 1 FROM imagestorageplacement x WHERE x.storage_id = p.id)
      ORDER BY p.id`,
    [input.afterId, input.limit, input.defaultLocations, input.locations]);
  const { rows: last } = await db.query<{ id: number | null; examined: number }>(
    `SELECT max(id) AS id, count(*)::int AS examined FROM (SELECT id FROM imagestorage WHERE id > $1 ORDER BY id LIMIT $2) t`, [input.afterId, input.limit]);
  const blobs = rows
    .filter((r) => r.namespace_id !== null && (r.missing?.length ?? 0) > 0)
    .map((r) => ({ id: Number(r.id), digest: r.digest, size: Number(r.size), namespaceId: Number(r.namespace_id), missing: r.missing ?? [] }));
  const lastId = last[0]?.id;
  return { blobs, examined: last[0]?.examined ?? 0, nextAfterId: lastId === null || lastId === undefined ? undefined : Number(lastId) };
}

/** One blob's copies to record. */
export interface PlacementRecord {
  readonly blob: { readonly id: number; readonly digest: string };
  /** Location names, each with the storage ETag of its copy when the driver reported one. */
  readonly placements: readonly { readonly location: string; readonly etag?: string }[];
  /** The job's namespace, whose regions the state read after the insert includes. */
  readonly namespaceId: number;
}

/**
 * Records that each blob is at its `locations` (by name; idempotent), under the blobs' digest
 * locks (the ones the push path and GC take; taken in digest order, so two batches never wait on
 * each other in a cycle), only for a blob whose row (same id, same digest) still exists. One round
 * trip for the whole batch: the statements of one simple query run as one transaction, each with
 * its own snapshot, so the INSERT sees whatever a GC that held a lock before it committed. Answers
 * each blob as it is after the insert, read in the same round trip (undefined when it was
 * collected), so the caller needs no second read to see whether more locations became required.
 */
export async function recordPlacements(db: Queryable, records: readonly PlacementRecord[]): Promise<(ReplicationBlob | undefined)[]> {
  for (const { blob, namespaceId } of records) {
    if (!Number.isSafeInteger(blob.id) || !Number.isSafeInteger(namespaceId) || !/^[a-z0-9]+:[a-f0-9]+$/.test(blob.digest)) {
      throw new Error(`not a blob: ${blob.id} ${blob.digest} (namespace ${namespaceId})`);
    }
  }
  // Literals, not parameters: a query with parameters cannot carry several statements.
  const array = (values: readonly string[], type: string): string => `ARRAY[${values.join(', ')}]::${type}[]`;
  // One row per (blob, location): ON CONFLICT DO UPDATE may not touch a row twice in a statement.
  const pairs = [...new Map(records.flatMap((r) => r.placements.map((placement) => [`${r.blob.id}/${placement.location}`, { ...r.blob, ...placement }]))).values()];
  const etag = (value: string | undefined): string => (value === undefined ? 'NULL' : escapeLiteral(value));
  const digests = [...new Set(records.map((r) => r.blob.digest))].sort();
  const results = await db.query(
    `SELECT count(pg_advisory_xact_lock(hashtextextended('blobdigest:' || d, 0)))
       FROM (SELECT d FROM unnest(${array(digests.map(escapeLiteral), 'text')}) AS d ORDER BY d) AS sorted;
     INSERT INTO imagestorageplacement (storage_id, location_id, etag)
       SELECT s.id, l.id, r.etag
         FROM unnest(${array(pairs.map((p) => String(p.id)), 'bigint')}, ${array(pairs.map((p) => escapeLiteral(p.digest)), 'text')},
                     ${array(pairs.map((p) => escapeLiteral(p.location)), 'text')}, ${array(pairs.map((p) => etag(p.etag)), 'text')}) AS r(id, digest, location, etag)
         JOIN imagestorage s ON s.id = r.id AND s.content_checksum = r.digest
         JOIN imagestoragelocation l ON l.name = r.location
       ON CONFLICT (storage_id, location_id) DO UPDATE SET etag = coalesce(EXCLUDED.etag, imagestorageplacement.etag);
     ${BLOBS_SQL(array(records.map((r) => String(r.blob.id)), 'bigint'), array(records.map((r) => String(r.namespaceId)), 'bigint'))}`,
  ) as unknown as pg.QueryResult<ReplicationBlob & { ord: number }>[];
  // A location without an imagestoragelocation row is missing from its blob's placements after.
  return inOrder(results[2]!.rows, records.length).map((after, i) => (after?.digest === records[i]!.blob.digest ? after : undefined));
}

// Every referenced blob with a placement, and each location it must be in.
const REQUIRED_CTES = `
  refs AS (
    SELECT mb.blob_id AS id, r.namespace_user_id AS ns FROM manifestblob mb JOIN repository r ON r.id = mb.repository_id
    UNION SELECT ub.blob_id, r.namespace_user_id FROM uploadedblob ub JOIN repository r ON r.id = ub.repository_id WHERE ub.expires_at > now()),
  blobs AS (
    SELECT DISTINCT f.id FROM refs f WHERE EXISTS (SELECT 1 FROM imagestorageplacement x WHERE x.storage_id = f.id)),
  required AS (
    SELECT b.id, l.id AS location_id FROM blobs b JOIN imagestoragelocation l ON l.name = ANY($1::text[])
    UNION SELECT f.id, ur.location_id FROM refs f JOIN blobs b ON b.id = f.id JOIN userregion ur ON ur.user_id = f.ns),
  missing AS (
    SELECT q.id, q.location_id FROM required q
     WHERE NOT EXISTS (SELECT 1 FROM imagestorageplacement x WHERE x.storage_id = q.id AND x.location_id = q.location_id))`;

/** Per location name: blobs it must hold and does not (the replication backlog). */
export async function replicationBacklog(db: Queryable, defaultLocations: readonly string[]): Promise<Map<string, number>> {
  const { rows } = await db.query<{ name: string; missing: number }>(
    `WITH ${REQUIRED_CTES}
     SELECT l.name, (SELECT count(*) FROM missing m WHERE m.location_id = l.id)::int AS missing
       FROM imagestoragelocation l ORDER BY l.name`, [defaultLocations]);
  return new Map(rows.map((r) => [r.name, r.missing]));
}

/** One location's replication state. */
export interface LocationStatus {
  readonly location: string;
  /** Blobs with a placement here, and their bytes. */
  readonly held: number;
  readonly bytes: number;
  /** Blobs required here without a placement; of those, with a live job, and with a dead-lettered one. */
  readonly missing: number;
  readonly queued: number;
  readonly failed: number;
}

/**
 * Per location: held, bytes, missing, and of the missing how many have a live replication job
 * (`queuedIds`: blob ids of waiting, delayed or active jobs) or a dead-lettered one (`failedIds`).
 */
export async function replicationStatus(
  db: Queryable, input: { defaultLocations: readonly string[]; queuedIds: readonly number[]; failedIds: readonly number[] },
): Promise<LocationStatus[]> {
  const { rows } = await db.query<LocationStatus>(
    `WITH ${REQUIRED_CTES},
     held AS (
       SELECT p.location_id, count(*)::bigint AS held, coalesce(sum(s.image_size), 0)::bigint AS bytes
         FROM imagestorageplacement p JOIN imagestorage s ON s.id = p.storage_id GROUP BY p.location_id)
     SELECT l.name AS location, coalesce(h.held, 0) AS held, coalesce(h.bytes, 0) AS bytes,
            (SELECT count(*) FROM missing m WHERE m.location_id = l.id)::int AS missing,
            (SELECT count(*) FROM missing m WHERE m.location_id = l.id AND m.id = ANY($2::bigint[]))::int AS queued,
            (SELECT count(*) FROM missing m WHERE m.location_id = l.id AND m.id = ANY($3::bigint[]))::int AS failed
       FROM imagestoragelocation l LEFT JOIN held h ON h.location_id = l.id ORDER BY l.name`,
    [input.defaultLocations, input.queuedIds, input.failedIds]);
  return rows;
}
