/**
 * Reading action logs back in Quay's JSON view (`Log.to_dict(avatar, include_namespace=False)`:
 * kind, metadata, ip, datetime as RFC 2822, performer only when there is one; the superuser
 * listing adds the namespace), rendered by
 * Postgres so that listing pages and exports of millions of rows never build objects in Node.
 * Used by the front end's /logs routes and by the exportactionlogsworker.
 *
 * Rows are walked by keyset on (datetime, id), which the (account|repository, datetime, id)
 * indexes serve in order (and `logentry_datetime` across every namespace).
 */
import type { Queryable } from './pool.ts';

/** Which entries: a namespace (null: every namespace), optionally one repository and one performer, minus some kinds, in [start, end). */
export interface LogFilter {
  readonly namespaceId: number | null;
  readonly repositoryId?: number | null;
  readonly performerId?: number | null;
  /** Kinds left out (Quay's `filter_kinds`). */
  readonly excludeKinds?: readonly string[];
  readonly start: Date;
  /** Exclusive. */
  readonly end: Date;
}

/**
 * A keyset position: the (datetime, id) of the last row returned. The datetime is Postgres's own
 * text (microseconds and offset), as a JS Date would drop the microseconds and skip rows.
 */
export interface LogCursor {
  readonly datetime: string;
  readonly id: number;
}

/** One entry rendered: its keyset position and its JSON text in Quay's view. */
export interface RenderedLog extends LogCursor {
  readonly json: string;
}

// RFC 2822 as Python's formatdate(timegm(...)) writes it: "Wed, 01 Jan 2020 00:00:00 -0000".
const RFC2822 = `to_char(e.datetime AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS') || ' -0000'`;
// The avatar block as registry/api/permissions.ts's avatarOf writes it.
const PERFORMER = `json_build_object('kind', 'user', 'name', p.username, 'is_robot', p.robot,
  'avatar', json_build_object('name', p.username, 'hash', '', 'color', '#000000', 'kind', 'user'))`;
const VIEW = `CASE WHEN p.id IS NULL
  THEN json_build_object('kind', e.kind, 'metadata', e.metadata_json, 'ip', e.ip, 'datetime', ${RFC2822})
  ELSE json_build_object('kind', e.kind, 'metadata', e.metadata_json, 'ip', e.ip, 'datetime', ${RFC2822}, 'performer', ${PERFORMER})
  END`;
// Quay's include_namespace=True (the superuser listing): the entry's namespace, when it has one.
const NAMESPACE = `json_build_object('kind', CASE WHEN a.organization THEN 'org' ELSE 'user' END, 'name', a.username,
  'avatar', json_build_object('name', a.username, 'hash', '', 'color', '#000000', 'kind', CASE WHEN a.organization THEN 'org' ELSE 'user' END))`;
const VIEW_WITH_NAMESPACE = `CASE WHEN a.id IS NULL THEN (${VIEW})::jsonb ELSE (${VIEW})::jsonb || jsonb_build_object('namespace', ${NAMESPACE}) END`;

function where(filter: LogFilter, direction: 'asc' | 'desc', cursor: LogCursor | undefined): { sql: string; values: unknown[] } {
  const values: unknown[] = [filter.start, filter.end];
  const clauses = ['e.datetime >= $1', 'e.datetime < $2'];
  if (filter.namespaceId !== null) clauses.push(`e.account_id = $${values.push(filter.namespaceId)}`);
  if (filter.repositoryId != null) clauses.push(`e.repository_id = $${values.push(filter.repositoryId)}`);
  if (filter.performerId != null) clauses.push(`e.performer_id = $${values.push(filter.performerId)}`);
  if (filter.excludeKinds?.length) clauses.push(`NOT (e.kind = ANY($${values.push(filter.excludeKinds)}::text[]))`);
  if (cursor) {
    const op = direction === 'asc' ? '>' : '<';
    clauses.push(`(e.datetime, e.id) ${op} ($${values.push(cursor.datetime)}::timestamptz, $${values.push(cursor.id)}::bigint)`);
  }
  return { sql: clauses.join(' AND '), values };
}

/**
 * Up to `limit` entries after `cursor`, rendered, oldest first (`asc`, exports) or newest first
 * (`desc`, listing pages). `statementTimeoutMs` bounds the query on the server.
 */
export async function readLogPage(
  db: Queryable, filter: LogFilter, options: { direction: 'asc' | 'desc'; limit: number; cursor?: LogCursor; includeNamespace?: boolean },
): Promise<RenderedLog[]> {
  const { sql, values } = where(filter, options.direction, options.cursor);
  const order = options.direction === 'asc' ? 'ASC' : 'DESC';
  const { rows } = await db.query<{ datetime: string; id: number; json: string }>(
    `SELECT e.datetime::text AS datetime, e.id, ${options.includeNamespace ? VIEW_WITH_NAMESPACE : VIEW}::text AS json
     FROM logentry e LEFT JOIN namespace p ON p.id = e.performer_id
     ${options.includeNamespace ? 'LEFT JOIN namespace a ON a.id = e.account_id' : ''}
     WHERE ${sql}
     ORDER BY e.datetime ${order}, e.id ${order}
     LIMIT ${Math.max(1, Math.floor(options.limit))}`,
    values);
  return rows;
}

/** A run of entries rendered as one text: each entry followed by a comma (Quay's export layout). */
export interface RenderedChunk {
  /** Entries in the chunk. */
  readonly rows: number;
  /** `<entry>,<entry>,...,<entry>,` in (datetime, id) order; empty when `rows` is 0. */
  readonly text: string;
  /** The keyset position of the chunk's last entry; undefined when `rows` is 0. */
  readonly last: LogCursor | undefined;
}

/**
 * Up to `limit` entries after `cursor`, oldest first, joined by Postgres into one text: the export
 * path, where Node needs neither a row object nor a string per entry (a third of its CPU went
 * there). `statement_timeout` set on the connection bounds it.
 */
export async function readLogChunk(db: Queryable, filter: LogFilter, options: { limit: number; cursor?: LogCursor }): Promise<RenderedChunk> {
  const { sql, values } = where(filter, 'asc', options.cursor);
  const { rows } = await db.query<{ rows: number; text: string | null; datetime: string | null; id: number | null }>(
    `WITH page AS (
       SELECT e.datetime, e.id, ${VIEW}::text AS json
       FROM logentry e LEFT JOIN namespace p ON p.id = e.performer_id
       WHERE ${sql}
       ORDER BY e.datetime, e.id
       LIMIT ${Math.max(1, Math.floor(options.limit))}
     )
     SELECT count(*)::int AS rows, string_agg(json || ',', '' ORDER BY datetime, id) AS text,
            (SELECT datetime::text FROM page ORDER BY datetime DESC, id DESC LIMIT 1) AS datetime,
            (SELECT id FROM page ORDER BY datetime DESC, id DESC LIMIT 1) AS id
     FROM page`,
    values);
  const row = rows[0]!;
  return {
    rows: row.rows,
    text: row.text ?? '',
    last: row.datetime !== null && row.id !== null ? { datetime: row.datetime, id: row.id } : undefined,
  };
}

/** Entry counts by kind and UTC day (Quay's aggregated log counts), in day then kind order. */
export async function countLogsByKindAndDay(db: Queryable, filter: LogFilter): Promise<{ kind: string; day: Date; count: number }[]> {
  const { sql, values } = where(filter, 'asc', undefined);
  const { rows } = await db.query<{ kind: string; day: Date; count: number }>(
    `SELECT e.kind, date_trunc('day', e.datetime AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day, count(*)::bigint AS count
     FROM logentry e
     WHERE ${sql}
     GROUP BY 1, 2 ORDER BY 2, 1`,
    values);
  return rows;
}
