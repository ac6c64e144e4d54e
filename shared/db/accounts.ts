/**
 * Creating users, organizations and robots: the SQL both the Quay API and the CLI use
 * (`quayfleet users create`, `quayfleet orgs create`). Each function runs several statements, so
 * call it inside `withTransaction`; none opens a transaction itself.
 */
import { logAction, NO_LOG_SKIPS, type LogSettings } from './logs.ts';
import {
  createNamespace, findNamespace, isValidNamespaceName, ROBOT_SHORTNAME_PATTERN, type NamespaceRow,
} from './namespaces.ts';
import { hashPassword } from './passwords.ts';
import type { Queryable } from './pool.ts';
import { addTeamMember, OWNERS_TEAM, upsertTeam } from './teams.ts';
import { issueRobotToken } from './tokens.ts';

/** Thrown for a name the registry's naming rules refuse; `message` says which rule. */
export class InvalidAccountNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidAccountNameError';
  }
}

/** Thrown when a namespace an operation needs does not exist (or is not of the needed kind). */
export class AccountNotFoundError extends Error {
  constructor(readonly username: string, what = 'user') {
    super(`${what} "${username}" does not exist`);
    this.name = 'AccountNotFoundError';
  }
}

function checkName(name: string, what: string): void {
  if (!isValidNamespaceName(name)) {
    throw new InvalidAccountNameError(`Invalid ${what} name "${name}": use 2-255 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit`);
  }
}

/**
 * Creates a user with a password (hashed here); NamespaceExistsError when the name is taken or
 * still reserved by a pending namespace purge. Logs nothing: Quay logs no creation of users.
 */
export async function createUserAccount(
  tx: Queryable, input: { username: string; password: string; email?: string | null },
): Promise<NamespaceRow> {
  checkName(input.username, 'username');
  if (input.password.length < 8) throw new InvalidAccountNameError('Password must be at least 8 characters long');
  const passwordHash = await hashPassword(input.password);
  return createNamespace(tx, { username: input.username, email: input.email ?? null, passwordHash, kind: 'user' });
}

/**
 * Creates an organization owned by `owner` (an existing user): the org, its `owners` team (role
 * admin) with the owner in it, and the `org_create` action log.
 */
export async function createOrganizationAccount(
  tx: Queryable, input: { name: string; owner: string; email?: string | null; ip?: string | null; logs?: LogSettings },
): Promise<NamespaceRow> {
  checkName(input.name, 'organization');
  const owner = await findNamespace(tx, input.owner);
  if (!owner || owner.organization || owner.robot || !owner.enabled) throw new AccountNotFoundError(input.owner);
  const org = await createNamespace(tx, { username: input.name, email: input.email ?? null, kind: 'organization' });
  const { team } = await upsertTeam(tx, { organizationId: org.id, name: OWNERS_TEAM, role: 'admin', description: 'Organization owners' });
  await addTeamMember(tx, team.id, owner.id);
  await logAction(tx, input.logs ?? NO_LOG_SKIPS, {
    kind: 'org_create', namespace: { id: org.id, name: org.username }, performerId: owner.id, ip: input.ip ?? null,
    metadata: { email: input.email ?? null, namespace: org.username },
  });
  return org;
}

/**
 * Creates robot `<namespace>+<shortname>` and its token (returned in clear, shown once), with the
 * `create_robot` action log. NamespaceExistsError when the robot already exists.
 */
export async function createRobotAccount(
  tx: Queryable, input: {
    namespace: NamespaceRow; shortname: string; description?: string; unstructuredMetadata?: Record<string, unknown>;
    performerId?: number | null; ip?: string | null; logs?: LogSettings;
  },
): Promise<{ robot: NamespaceRow; token: string }> {
  if (!ROBOT_SHORTNAME_PATTERN.test(input.shortname)) {
    throw new InvalidAccountNameError(`Invalid robot account shortname "${input.shortname}": use 2-255 lowercase letters, digits or '_', starting with a letter`);
  }
  const robot = await createNamespace(tx, { username: `${input.namespace.username}+${input.shortname}`, kind: 'robot' });
  const token = await issueRobotToken(tx, robot.id);
  await logAction(tx, input.logs ?? NO_LOG_SKIPS, {
    kind: 'create_robot', namespace: { id: input.namespace.id, name: input.namespace.username }, performerId: input.performerId ?? null, ip: input.ip ?? null,
    // Quay's keys (endpoints/api/robot.py): the short name, and the body's fields as given (null when absent).
    metadata: { robot: input.shortname, description: input.description ?? null, unstructured_metadata: input.unstructuredMetadata ?? null },
  });
  return { robot, token };
}
