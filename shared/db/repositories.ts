/**
 * Repositories. State values are Quay's RepositoryState. A repository marked for deletion is
 * renamed to a random name (so the original name is free at once, as in Quay) and keeps its rows
 * until the repositorygc purge removes them.
 */
import type { Queryable } from './pool.ts';

export const RepositoryState = {
  NORMAL: 0,
  READ_ONLY: 1,
  MIRROR: 2,
  MARKED_FOR_DELETION: 3,
  ORG_MIRROR: 4,
} as const;
export type RepositoryStateValue = (typeof RepositoryState)[keyof typeof RepositoryState];

/** The state's name as Quay's API spells it. */
export function repositoryStateName(state: number): string {
  return Object.entries(RepositoryState).find(([, v]) => v === state)?.[0] ?? 'NORMAL';
}

export interface RepositoryRow {
  id: number;
  namespace_user_id: number;
  namespace: string;
  name: string;
  visibility: 'public' | 'private';
  kind: string;
  state: number;
  description: string | null;
  created: Date;
}

const SELECT = `SELECT r.id, r.namespace_user_id, n.username AS namespace, r.name, r.visibility, r.kind, r.state, r.description, r.created
  FROM repository r JOIN namespace n ON n.id = r.namespace_user_id`;

/** The live repository `namespace/name` (not marked for deletion, namespace not deleted), or undefined. */
export async function findRepository(db: Queryable, namespace: string, name: string): Promise<RepositoryRow | undefined> {
  const { rows } = await db.query<RepositoryRow>(
    `${SELECT} WHERE n.username = $1 AND r.name = $2 AND NOT n.deleted AND r.state <> ${RepositoryState.MARKED_FOR_DELETION}`,
    [namespace, name]);
  return rows[0];
}

/** The repository with `id`, whatever its state, or undefined. */
export async function getRepositoryById(db: Queryable, id: number): Promise<RepositoryRow | undefined> {
  const { rows } = await db.query<RepositoryRow>(`${SELECT} WHERE r.id = $1`, [id]);
  return rows[0];
}

/** Thrown when `namespace/name` already exists. */
export class RepositoryExistsError extends Error {
  constructor(readonly namespace: string, readonly repository: string) {
    super(`repository "${namespace}/${repository}" already exists`);
    this.name = 'RepositoryExistsError';
  }
}

/**
 * Creates a repository in `namespaceId`; RepositoryExistsError when the name is taken. A taken name
 * is found with ON CONFLICT rather than by catching the unique violation: the violation would abort
 * the caller's transaction, and concurrent creations of one name (a client asking for several push
 * tokens at once) must leave it usable.
 */
export async function createRepository(
  db: Queryable, input: { namespaceId: number; name: string; visibility?: 'public' | 'private'; description?: string | null },
): Promise<RepositoryRow> {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO repository (namespace_user_id, name, visibility, description) VALUES ($1, $2, $3, $4)
     ON CONFLICT DO NOTHING RETURNING id`,
    [input.namespaceId, input.name, input.visibility ?? 'private', input.description ?? null]);
  if (rows[0]) return (await getRepositoryById(db, rows[0].id))!;
  const namespace = await db.query<{ username: string }>(`SELECT username FROM namespace WHERE id = $1`, [input.namespaceId]);
  throw new RepositoryExistsError(namespace.rows[0]?.username ?? String(input.namespaceId), input.name);
}

/**
 * Quay's repository-name rule (lowercase alphanumerics separated by `.`, `_`, `-` or `/`
 * components, up to 255 characters), shared by the API and the registry.
 */
export const REPOSITORY_NAME_PATTERN = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** Whether `name` is a valid repository name (without the namespace). */
export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && REPOSITORY_NAME_PATTERN.test(name);
}
