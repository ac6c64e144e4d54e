/**
 * What repository and namespace notifications validate alike at creation (Quay's
 * NotificationMethod.validate): the create body, each method's config, the SSRF checks of
 * webhook and Slack URLs, and the quay_notification target, which must exist in the namespace.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Queryable } from '../../shared/db/pool.ts';
import { checkUrlTarget, ssrfPolicyOf, SsrfRefusedError } from '../../shared/net/ssrf.ts';
import { MethodConfigError, validateMethodConfig, type NotificationMethod } from '../../shared/notifications/methods.ts';
import { apiErrors } from '../errors.ts';

/** Quay's create body (camelCase `eventConfig`), for repository and namespace notifications. */
export const createNotificationBody = z.object({
  event: z.string().min(1),
  method: z.string().min(1),
  config: z.record(z.string(), z.unknown()),
  eventConfig: z.record(z.string(), z.unknown()),
  title: z.string().max(255).nullable().optional(),
});

/** The namespace a notification belongs to (the repository's, or the namespace itself). */
export interface NotificationOwner {
  readonly namespaceId: number;
  readonly namespace: string;
}

/** Validates `config` for `method` (400 with Quay's message when it does not); returns the parsed config. */
export async function validateMethodFor(
  app: FastifyInstance, owner: NotificationOwner, method: NotificationMethod, rawConfig: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  let config: Record<string, unknown>;
  try {
    config = validateMethodConfig(method, rawConfig);
  } catch (error) {
    if (error instanceof MethodConfigError) throw apiErrors.badRequest(error.message);
    throw error;
  }
  if (method === 'webhook' || method === 'slack') {
    try {
      await checkUrlTarget(ssrfPolicyOf(app.deps.config.quay), config.url as string);
    } catch (error) {
      if (error instanceof SsrfRefusedError) throw apiErrors.badRequest(`Invalid ${method} URL: ${error.message}`);
      throw error;
    }
  }
  if (method === 'quay_notification') await checkQuayTarget(app.deps.db, owner, config.target as { kind: string; name: string });
  return config;
}

// Quay's QuayNotificationMethod.validate: the target must exist; an organization must be the namespace.
async function checkQuayTarget(db: Queryable, owner: NotificationOwner, target: { kind: string; name: string }): Promise<void> {
  if (target.kind === 'org') {
    if (target.name !== owner.namespace) throw apiErrors.badRequest('Organization name must match repository namespace');
    return;
  }
  const { rowCount } = await db.query(
    target.kind === 'team'
      ? `SELECT 1 FROM team WHERE organization_id = $1 AND name = $2`
      : `SELECT 1 FROM namespace WHERE username = $2 AND NOT organization AND NOT robot AND NOT deleted AND $1::bigint IS NOT NULL`,
    [owner.namespaceId, target.name]);
  if (!rowCount) throw apiErrors.badRequest(target.kind === 'team' ? `Unknown team ${target.name}` : `Unknown user ${target.name}`);
}
