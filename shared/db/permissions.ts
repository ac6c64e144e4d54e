/**
 * Who may do what on a repository, as Quay decides it:
 *
 * - a user owns its own namespace: admin on every repository in it, and may create repositories;
 * - organization teams have a role: `admin` (owners: admin on every repository of the org, may
 *   create), `creator` (may create; reads only what it is granted), `member` (only grants);
 * - explicit grants (`repositorypermission`) give a user, a robot or a team `read`, `write` or
 *   `admin` on one repository;
 * - a public repository is readable by every signed-in principal, and by anonymous callers only
 *   when FEATURE_ANONYMOUS_ACCESS is on;
 * - SUPER_USERS (from config, so the caller passes `superuser`) and users flagged `superuser` in
 *   the database have admin everywhere (robots never).
 *
 * A disabled or deleted principal holds nothing. Roles rank read < write < admin.
 */
import type { Queryable } from './pool.ts';
import { RepositoryState, type RepositoryRow } from './repositories.ts';

export type RepositoryRole = 'read' | 'write' | 'admin';
export const REPOSITORY_ROLES: readonly RepositoryRole[] = ['read', 'write', 'admin'];
export type TeamRole = 'admin' | 'creator' | 'member';
export const TEAM_ROLES: readonly TeamRole[] = ['admin', 'creator', 'member'];

const RANK: Record<RepositoryRole, number> = { read: 1, write: 2, admin: 3 };

/** Whether `held` is at least `needed`. */
export function roleAtLeast(held: RepositoryRole | null, needed: RepositoryRole): boolean {
  return held !== null && RANK[held] >= RANK[needed];
}

/** Who asks: a namespace id (user or robot) or null for anonymous, plus what config says about them. */
export interface PermissionSubject {
  readonly principalId: number | null;
  readonly superuser: boolean;
  readonly anonymousAccess: boolean;
}

/** The result of `resolveRepositoryAccess`. */
export interface RepositoryAccessInfo {
  /** The live namespace, when it exists and is not deleted. */
  readonly namespaceId: number | null;
  readonly namespaceEnabled: boolean;
  /** The live repository (not marked for deletion), when it exists. */
  readonly repository: RepositoryRow | undefined;
  /** The effective role on the repository (also when it does not exist yet: namespace ownership). */
  readonly role: RepositoryRole | null;
  /** May create repositories in this namespace. */
  readonly canCreate: boolean;
  /** internal_robot_id of the repository's mirror config, when it has one. */
  readonly mirrorRobotId: number | null;
  /** The subject is a live, non-robot superuser (config's `superuser`, or the database flag). */
  readonly superuser: boolean;
}

/**
 * A lookup that rides in the access query's statement (one round trip for authorization and the
 * data a request serves): a SELECT of at most one row that uses the repository found as `repo.id`
 * (NULL when there is none) and its own parameters from `$6`. Its row comes back whether or not
 * the subject may see it; the caller hands it out only after the access check passes. `name`
 * names the prepared statement.
 */
export interface AttachedLookup {
  readonly name: string;
  readonly sql: string;
  readonly values: readonly unknown[];
}

/** First parameter number an AttachedLookup may use. */
export const ATTACHED_FIRST_PARAM = 6;

// One round trip: the namespace, the repository, the principal and every source of a role are
// resolved together, so a request costs one query however many paths lead to a permission.
const accessSql = (attachedSql?: string): string => `
WITH ns AS (SELECT id, organization, enabled FROM namespace WHERE username = $1 AND NOT deleted),
repo AS (SELECT r.id, r.namespace_user_id, r.name, r.visibility, r.kind, r.state, r.description, r.created
         FROM repository r JOIN ns ON r.namespace_user_id = ns.id
         WHERE r.name = $2 AND r.state <> ${RepositoryState.MARKED_FOR_DELETION}),
actor AS (SELECT id, robot, NOT robot AND ($4::boolean OR superuser) AS superuser FROM namespace WHERE id = $3 AND enabled AND NOT deleted),
teams AS (SELECT t.id, t.role, t.organization_id FROM team t JOIN teammember m ON m.team_id = t.id JOIN actor ON actor.id = m.user_id),
ranks AS (
  SELECT 3 AS rank FROM actor WHERE actor.superuser
  UNION ALL SELECT 3 FROM actor JOIN ns ON ns.id = actor.id AND NOT ns.organization
  UNION ALL SELECT 3 FROM teams JOIN ns ON teams.organization_id = ns.id WHERE teams.role = 'admin'
  UNION ALL SELECT CASE p.role WHEN 'admin' THEN 3 WHEN 'write' THEN 2 ELSE 1 END
    FROM repositorypermission p JOIN repo ON p.repository_id = repo.id
    WHERE p.user_id = (SELECT id FROM actor) OR p.team_id IN (SELECT id FROM teams)
  UNION ALL SELECT 1 FROM repo WHERE repo.visibility = 'public' AND (EXISTS (SELECT 1 FROM actor) OR $5::boolean)
)
SELECT (SELECT id FROM ns) AS namespace_id, COALESCE((SELECT enabled FROM ns), false) AS namespace_enabled,
  repo.id, repo.namespace_user_id, $1::text AS namespace, repo.name, repo.visibility, repo.kind, repo.state, repo.description, repo.created,
  (SELECT max(rank) FROM ranks) AS rank,
  EXISTS (SELECT 1 FROM ns WHERE EXISTS (SELECT 1 FROM actor WHERE actor.superuser OR (actor.id = ns.id AND NOT ns.organization))
          OR EXISTS (SELECT 1 FROM teams WHERE teams.organization_id = ns.id AND teams.role IN ('admin', 'creator'))) AS can_create,
  (SELECT internal_robot_id FROM repomirrorconfig WHERE repository_id = repo.id) AS mirror_robot_id,
  COALESCE((SELECT superuser FROM actor), false) AS actor_superuser${attachedSql ? ', attached.*' : ''}
FROM (SELECT 1) AS one LEFT JOIN repo ON true${attachedSql ? ` LEFT JOIN LATERAL (${attachedSql}) AS attached ON true` : ''}`;
const ACCESS_SQL = accessSql();
/** Columns of ACCESS_SQL's row; an attached lookup's columns follow them. */
const ACCESS_COLUMNS = 15;

/**
 * Resolves namespace, repository and the subject's effective role on `namespace/repository` in one
 * query. The role is computed even for a repository that does not exist (ownership applies).
 */
export async function resolveRepositoryAccess(
  db: Queryable, subject: PermissionSubject, namespace: string, repository: string,
): Promise<RepositoryAccessInfo> {
  return (await resolveRepositoryAccessWith(db, subject, namespace, repository)).access;
}

/**
 * resolveRepositoryAccess plus `attached` in the same statement: the access and the attached
 * lookup's row (undefined when it found none: its first column is NULL), one round trip.
 */
export async function resolveRepositoryAccessWith<T extends object = never>(
  db: Queryable, subject: PermissionSubject, namespace: string, repository: string, attached?: AttachedLookup,
): Promise<{ access: RepositoryAccessInfo; attached: T | undefined }> {
  // Named: a prepared statement is planned once per connection, not on every /v2 request. Rows as
  // arrays, so an attached column may share a name with an access column.
  const { rows, fields } = await db.query<unknown[]>({
    name: attached ? `repository-access:${attached.name}` : 'repository-access',
    text: attached ? attachedText(attached) : ACCESS_SQL,
    values: [namespace, repository, subject.principalId, subject.superuser, subject.anonymousAccess, ...(attached?.values ?? [])],
    rowMode: 'array',
  });
  const row = rows[0]!;
  const [namespaceId, namespaceEnabled, id, namespaceUserId, ns, name, visibility, kind, state, description, created, rank, canCreate, mirrorRobotId, superuser] = row as [
    number | null, boolean, number | null, number, string, string, RepositoryRow['visibility'], RepositoryRow['kind'], RepositoryRow['state'], string | null, Date,
    number | null, boolean, number | null, boolean,
  ];
  const access: RepositoryAccessInfo = {
    namespaceId, namespaceEnabled,
    repository: id === null ? undefined : { id, namespace_user_id: namespaceUserId, namespace: ns, name, visibility, kind, state, description, created } as RepositoryRow,
    role: namespaceId === null || !namespaceEnabled ? null : rankToRole(rank),
    canCreate: namespaceEnabled && canCreate, mirrorRobotId, superuser,
  };
  if (!attached || row[ACCESS_COLUMNS] === null || row[ACCESS_COLUMNS] === undefined) return { access, attached: undefined };
  const extra: Record<string, unknown> = {};
  for (let i = ACCESS_COLUMNS; i < fields.length; i++) extra[fields[i]!.name] = row[i];
  return { access, attached: extra as T };
}

// The statement text per attached lookup, built once: pg compares it with the prepared one on every call.
const attachedTexts = new Map<string, string>();
function attachedText(attached: AttachedLookup): string {
  let text = attachedTexts.get(attached.sql);
  if (text === undefined) {
    text = accessSql(attached.sql);
    attachedTexts.set(attached.sql, text);
  }
  return text;
}

function rankToRole(rank: number | null): RepositoryRole | null {
  return rank === 3 ? 'admin' : rank === 2 ? 'write' : rank === 1 ? 'read' : null;
}

/** Whether the subject is an admin of organization (or owner of user namespace) `namespaceId`. */
export async function isNamespaceAdmin(db: Queryable, subject: PermissionSubject, namespaceId: number): Promise<boolean> {
  if (subject.principalId === null) return false;
  const { rows } = await db.query<{ ok: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM namespace a WHERE a.id = $2 AND a.enabled AND NOT a.deleted AND (
       ($3::boolean AND NOT a.robot) OR a.id = $1
       OR EXISTS (SELECT 1 FROM team t JOIN teammember m ON m.team_id = t.id
                  WHERE t.organization_id = $1 AND t.role = 'admin' AND m.user_id = a.id))) AS ok`,
    [namespaceId, subject.principalId, subject.superuser]);
  return rows[0]!.ok;
}

/** Grants (or changes) `role` on a repository to a user or robot. */
export async function setUserRepositoryPermission(db: Queryable, repositoryId: number, userId: number, role: RepositoryRole): Promise<void> {
  await db.query(
    `INSERT INTO repositorypermission (repository_id, user_id, role) VALUES ($1, $2, $3)
     ON CONFLICT (repository_id, user_id) WHERE user_id IS NOT NULL DO UPDATE SET role = EXCLUDED.role`,
    [repositoryId, userId, role]);
}

/** Grants (or changes) `role` on a repository to a team. */
export async function setTeamRepositoryPermission(db: Queryable, repositoryId: number, teamId: number, role: RepositoryRole): Promise<void> {
  await db.query(
    `INSERT INTO repositorypermission (repository_id, team_id, role) VALUES ($1, $2, $3)
     ON CONFLICT (repository_id, team_id) WHERE team_id IS NOT NULL DO UPDATE SET role = EXCLUDED.role`,
    [repositoryId, teamId, role]);
}

/** Removes a user's (or robot's) explicit grant; returns whether one existed. */
export async function deleteUserRepositoryPermission(db: Queryable, repositoryId: number, userId: number): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM repositorypermission WHERE repository_id = $1 AND user_id = $2`, [repositoryId, userId]);
  return (rowCount ?? 0) > 0;
}

/** Removes a team's explicit grant; returns whether one existed. */
export async function deleteTeamRepositoryPermission(db: Queryable, repositoryId: number, teamId: number): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM repositorypermission WHERE repository_id = $1 AND team_id = $2`, [repositoryId, teamId]);
  return (rowCount ?? 0) > 0;
}

/**
 * A SQL condition on repository alias `r` (and namespace alias `n`) true for repositories the
 * subject may read; its parameters start at `$<firstParam>`. For `_catalog` and API listings.
 * `includePublic: false` keeps only what the subject reaches through a role (Quay's listing
 * without `public=true`).
 */
export function visibleRepositoryCondition(
  subject: PermissionSubject, firstParam: number, options: { includePublic?: boolean } = {},
): { sql: string; params: unknown[] } {
  const [a, s, anon, pub] = [firstParam, firstParam + 1, firstParam + 2, firstParam + 3].map((i) => `$${i}`);
  const sql = `(NOT n.deleted AND n.enabled AND r.state <> ${RepositoryState.MARKED_FOR_DELETION} AND (
    (${pub}::boolean AND r.visibility = 'public' AND (${anon}::boolean OR ${a}::bigint IS NOT NULL))
    OR EXISTS (SELECT 1 FROM namespace a WHERE a.id = ${a}::bigint AND a.enabled AND NOT a.deleted AND (
      (${s}::boolean AND NOT a.robot) OR (a.id = n.id AND NOT n.organization)
      OR EXISTS (SELECT 1 FROM team t JOIN teammember m ON m.team_id = t.id WHERE t.organization_id = n.id AND t.role = 'admin' AND m.user_id = a.id)
      OR EXISTS (SELECT 1 FROM repositorypermission p WHERE p.repository_id = r.id AND (p.user_id = a.id
        OR p.team_id IN (SELECT m.team_id FROM teammember m WHERE m.user_id = a.id)))))))`;
  return { sql, params: [subject.principalId, subject.superuser, subject.anonymousAccess, options.includePublic ?? true] };
}
