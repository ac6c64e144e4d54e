/**
 * What the user, organization and superuser routes share: the time machine setting, robot
 * creation, the two-step namespace delete, and the mapping of account errors to Quay's 400s.
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AccountNotFoundError, createRobotAccount, InvalidAccountNameError } from '../../shared/db/accounts.ts';
import { markNamespaceForDeletion, SoleAdminError } from '../../shared/db/deletion-markers.ts';
import { logAction, type LogKind } from '../../shared/db/logs.ts';
import { NamespaceExistsError, setTimeMachineSeconds, type NamespaceRow } from '../../shared/db/namespaces.ts';
import { withTransaction, type Queryable } from '../../shared/db/pool.ts';
import type { Principal } from '../auth/access.ts';
import { apiErrors } from '../errors.ts';
import { clientIp, parseInput } from './common.ts';

/** Runs `fn`, turning account errors into Quay's 400 (or 404) answers. */
export async function withAccountErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof NamespaceExistsError) throw apiErrors.badRequest('A user or organization with this name already exists');
    if (error instanceof InvalidAccountNameError || error instanceof SoleAdminError) throw apiErrors.badRequest(error.message);
    if (error instanceof AccountNotFoundError) throw apiErrors.notFound(error.message);
    throw error;
  }
}

/** Body of PUT /organization/{org} and PUT /user/: only the keys quayfleet acts on. */
export const namespaceSettingsBody = z.object({
  tag_expiration_s: z.number().int().nonnegative().optional(),
  email: z.string().email().optional(),
});

/**
 * Applies a PUT of namespace settings in one transaction: `tag_expiration_s` must be one of
 * TAG_EXPIRATION_OPTIONS (Quay: "Invalid tag expiration option"); each change is logged with Quay's kind.
 */
export async function updateNamespaceSettings(request: FastifyRequest, principal: Principal, namespace: NamespaceRow): Promise<void> {
  const deps = request.server.deps;
  const body = parseInput(namespaceSettingsBody, request.body, 'settings');
  const seconds = body.tag_expiration_s;
  if (seconds !== undefined && !deps.config.tagExpirationOptionsSeconds.includes(seconds)) {
    throw apiErrors.badRequest('Invalid tag expiration option');
  }
  await withTransaction(deps.db, async (tx) => {
    const log = (kind: LogKind, metadata: Record<string, unknown>) => logAction(tx, deps.config.quay, {
      kind, namespace: { id: namespace.id, name: namespace.username }, performerId: principal.id ?? null, ip: clientIp(request), metadata,
    });
    // Quay's kinds and keys (endpoints/api/organization.py, user.py): org_* carry the namespace, user_* do not.
    const org = namespace.organization;
    if (seconds !== undefined && seconds !== namespace.removed_tag_expiration_s) {
      await setTimeMachineSeconds(tx, namespace.id, seconds);
      await log(org ? 'org_change_tag_expiration' : 'user_change_tag_expiration',
        org ? { tag_expiration: seconds, namespace: namespace.username } : { tag_expiration: seconds });
    }
    if (body.email !== undefined && body.email !== namespace.email) {
      await tx.query(`UPDATE namespace SET email = $2 WHERE id = $1`, [namespace.id, body.email]);
      await log(org ? 'org_change_email' : 'user_change_email',
        org ? { email: body.email, namespace: namespace.username, old_email: namespace.email } : { email: body.email, old_email: namespace.email });
    }
  });
}

const robotBody = z.object({ description: z.string().max(255).optional(), unstructured_metadata: z.record(z.string(), z.unknown()).optional() });

/** PUT .../robots/{short}: creates the robot and returns Quay's robot view with its token (shown once). */
export async function createRobotFor(request: FastifyRequest, principal: Principal, namespace: NamespaceRow, shortname: string): Promise<Record<string, unknown>> {
  const body = parseInput(robotBody, request.body ?? {}, 'robot');
  const { robot, token } = await withTransaction(request.server.deps.db, (tx) => withAccountErrors(() => createRobotAccount(tx, {
    namespace, shortname, description: body.description, unstructuredMetadata: body.unstructured_metadata, performerId: principal.id ?? null, ip: clientIp(request), logs: request.server.deps.config.quay,
  }).catch((error: unknown) => {
    if (error instanceof NamespaceExistsError) throw apiErrors.badRequest(`Existing robot with name: ${namespace.username}+${shortname}`);
    throw error;
  })));
  return {
    name: robot.username, created: robot.creation_date.toUTCString().replace('GMT', '-0000'), last_accessed: null,
    description: body.description ?? '', token, unstructured_metadata: body.unstructured_metadata ?? {},
  };
}

/** Marks `namespace` for deletion (two-step delete) in one transaction and wakes the outbox relay. */
export async function deleteNamespace(request: FastifyRequest, principal: Principal, namespace: NamespaceRow): Promise<void> {
  const deps = request.server.deps;
  await withAccountErrors(() => withTransaction(deps.db, (tx: Queryable) => markNamespaceForDeletion(tx, namespace, {
    performerId: principal.id ?? null, ip: clientIp(request), logs: deps.config.quay,
  })));
  deps.onOutboxWrite?.();
}
