/**
 * Organization teams and their members. A team's role applies to the whole organization:
 * `admin` (owners), `creator` (may create repositories), `member` (only explicit grants).
 */
import type { TeamRole } from './permissions.ts';
import type { Queryable } from './pool.ts';

export interface TeamRow {
  id: number;
  organization_id: number;
  name: string;
  role: TeamRole;
  description: string;
}

/** The name of the team every organization starts with (its owners). */
export const OWNERS_TEAM = 'owners';

/** Quay's team-name rule. */
export const TEAM_NAME_PATTERN = /^[a-z][a-z0-9]+$/;

/** The team `name` of organization `organizationId`, or undefined. */
export async function findTeam(db: Queryable, organizationId: number, name: string): Promise<TeamRow | undefined> {
  const { rows } = await db.query<TeamRow>(
    `SELECT id, organization_id, name, role, description FROM team WHERE organization_id = $1 AND name = $2`, [organizationId, name]);
  return rows[0];
}

/** Creates the team or changes its role (and description when given); returns it and whether it is new. */
export async function upsertTeam(
  db: Queryable, input: { organizationId: number; name: string; role: TeamRole; description?: string },
): Promise<{ team: TeamRow; created: boolean }> {
  const { rows } = await db.query<TeamRow & { created: boolean }>(
    `INSERT INTO team (organization_id, name, role, description) VALUES ($1, $2, $3, COALESCE($4, ''))
     ON CONFLICT (organization_id, name) DO UPDATE SET role = EXCLUDED.role, description = COALESCE($4, team.description)
     RETURNING id, organization_id, name, role, description, (xmax = 0) AS created`,
    [input.organizationId, input.name, input.role, input.description ?? null]);
  const { created, ...team } = rows[0]!;
  return { team, created };
}

/** Adds `userId` to the team; returns false when it already was a member. */
export async function addTeamMember(db: Queryable, teamId: number, userId: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO teammember (team_id, user_id) VALUES ($1, $2) ON CONFLICT (team_id, user_id) DO NOTHING`, [teamId, userId]);
  return (rowCount ?? 0) > 0;
}

/** Removes `userId` from the team; returns whether it was a member. */
export async function removeTeamMember(db: Queryable, teamId: number, userId: number): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM teammember WHERE team_id = $1 AND user_id = $2`, [teamId, userId]);
  return (rowCount ?? 0) > 0;
}

/** Usernames of the team's members, sorted. */
export async function listTeamMembers(db: Queryable, teamId: number): Promise<{ id: number; username: string; robot: boolean }[]> {
  const { rows } = await db.query<{ id: number; username: string; robot: boolean }>(
    `SELECT n.id, n.username, n.robot FROM teammember m JOIN namespace n ON n.id = m.user_id
     WHERE m.team_id = $1 AND NOT n.deleted ORDER BY n.username`, [teamId]);
  return rows;
}
