/**
 * Namespaces: users, organizations and robots (one table, as Quay's "user"). Robots are named
 * `<namespace>+<shortname>`. A namespace marked for deletion is hidden (`deleted`) and its name is
 * reserved by its `deletednamespace` marker until the purge finishes.
 */
import type { Queryable } from './pool.ts';

export interface NamespaceRow {
  id: number;
  username: string;
  email: string | null;
  organization: boolean;
  robot: boolean;
  enabled: boolean;
  removed_tag_expiration_s: number;
  deleted: boolean;
  creation_date: Date;
}

const COLUMNS = 'id, username, email, organization, robot, enabled, removed_tag_expiration_s, deleted, creation_date';

/** Thrown when a namespace name is taken (also by one pending purge). */
export class NamespaceExistsError extends Error {
  constructor(readonly username: string) {
    super(`namespace "${username}" already exists`);
    this.name = 'NamespaceExistsError';
  }
}

/** The live (not deleted) namespace named `username`, or undefined. */
export async function findNamespace(db: Queryable, username: string): Promise<NamespaceRow | undefined> {
  const { rows } = await db.query<NamespaceRow>(`SELECT ${COLUMNS} FROM namespace WHERE username = $1 AND NOT deleted`, [username]);
  return rows[0];
}

/** The namespace with `id` (deleted or not), or undefined. */
export async function getNamespaceById(db: Queryable, id: number): Promise<NamespaceRow | undefined> {
  const { rows } = await db.query<NamespaceRow>(`SELECT ${COLUMNS} FROM namespace WHERE id = $1`, [id]);
  return rows[0];
}

export interface CreateNamespaceInput {
  username: string;
  email?: string | null;
  passwordHash?: string | null;
  kind: 'user' | 'organization' | 'robot';
  removedTagExpirationSeconds?: number;
}

/** Inserts a namespace; NamespaceExistsError when the name is taken or reserved by a pending purge. */
export async function createNamespace(db: Queryable, input: CreateNamespaceInput): Promise<NamespaceRow> {
  try {
    const { rows } = await db.query<NamespaceRow>(
      `INSERT INTO namespace (username, email, password_hash, organization, robot, removed_tag_expiration_s)
       SELECT $1, $2, $3, $4, $5, COALESCE($6, 1209600)
       WHERE NOT EXISTS (SELECT 1 FROM deletednamespace WHERE original_username = $1)
       RETURNING ${COLUMNS}`,
      [input.username, input.email ?? null, input.passwordHash ?? null, input.kind === 'organization', input.kind === 'robot', input.removedTagExpirationSeconds ?? null],
    );
    if (!rows[0]) throw new NamespaceExistsError(input.username);
    return rows[0];
  } catch (error) {
    if ((error as { code?: string }).code === '23505') throw new NamespaceExistsError(input.username);
    throw error;
  }
}

/** The stored password hash of an enabled, live user (not org, not robot), or undefined. */
export async function getUserPasswordHash(db: Queryable, username: string): Promise<{ id: number; password_hash: string | null } | undefined> {
  const { rows } = await db.query<{ id: number; password_hash: string | null }>(
    `SELECT id, password_hash FROM namespace WHERE username = $1 AND NOT deleted AND enabled AND NOT organization AND NOT robot`, [username]);
  return rows[0];
}

/** Sets the namespace's time machine window in seconds. */
export async function setTimeMachineSeconds(db: Queryable, namespaceId: number, seconds: number): Promise<void> {
  await db.query(`UPDATE namespace SET removed_tag_expiration_s = $2 WHERE id = $1`, [namespaceId, seconds]);
}

/** Quay's username rule for users and organizations (util/validation.py): 2-255 characters. */
export const NAMESPACE_NAME_PATTERN = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/** Whether `name` is a valid user or organization name. */
export function isValidNamespaceName(name: string): boolean {
  return name.length >= 2 && name.length <= 255 && NAMESPACE_NAME_PATTERN.test(name);
}

/** Quay's robot short-name rule (the part after `+`). */
export const ROBOT_SHORTNAME_PATTERN = /^[a-z][a-z0-9_]{1,254}$/;

/** The live robot `username` (`ns+short`), or undefined. */
export async function findRobot(db: Queryable, username: string): Promise<NamespaceRow | undefined> {
  const { rows } = await db.query<NamespaceRow>(`SELECT ${COLUMNS} FROM namespace WHERE username = $1 AND robot AND NOT deleted`, [username]);
  return rows[0];
}

/** Grants or revokes the database superuser flag (SUPER_USERS in config.yaml grants it too). */
export async function setSuperuser(db: Queryable, namespaceId: number, superuser: boolean): Promise<void> {
  await db.query(`UPDATE namespace SET superuser = $2 WHERE id = $1 AND NOT organization AND NOT robot`, [namespaceId, superuser]);
}

/** Whether the user `username` has the database superuser flag. */
export async function hasSuperuserFlag(db: Queryable, username: string): Promise<boolean> {
  // Named: asked on every authenticated /v2 request.
  const { rows } = await db.query<{ superuser: boolean }>({
    name: 'namespace-superuser-flag', text: `SELECT superuser FROM namespace WHERE username = $1 AND NOT deleted`, values: [username],
  });
  return rows[0]?.superuser ?? false;
}
