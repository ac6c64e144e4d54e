/**
 * Namespace notifications (Quay's endpoints/api/namespacenotification.py): notifications of an
 * organization or user for the namespace-level events, `quota_warning` and `quota_error`.
 * Registered when quota management is on (Quay's show_if; 404 otherwise).
 *
 * - `/organization/{org}/notifications[/{uuid}[/test]]`: the organization's admins (and superusers);
 * - `/user/namespacenotifications[/{uuid}[/test]]`: the signed-in user's own namespace.
 *
 * GET lists (`{notifications}`) or reads one; POST on the list creates (201, Quay's body with
 * camelCase `eventConfig`); DELETE removes (204); POST on one resets its failure count (204);
 * POST `test` queues the event's sample data to it (200 `{}`). Views, methods and their
 * validation are the repository notifications' (notification-input.ts), except that an e-mail
 * address needs no confirmation here: the worker mails the namespace's own address (an
 * organization's contact address, else its admins), as Quay does.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { notification } from '../../queues/notification.ts';
import { logAction, type LogKind } from '../../shared/db/logs.ts';
import { findNamespace, type NamespaceRow } from '../../shared/db/namespaces.ts';
import {
  createNamespaceNotification, deleteNamespaceNotification, findNamespaceNotification, listNamespaceNotifications,
  NOTIFICATION_FAILURE_LIMIT, resetNamespaceNotificationFailures, type NamespaceNotificationRow,
} from '../../shared/db/notifications.ts';
import { enqueueInTransaction } from '../../shared/db/outbox.ts';
import { isNamespaceAdmin } from '../../shared/db/permissions.ts';
import { withTransaction, type Queryable } from '../../shared/db/pool.ts';
import { quotaSettings } from '../../shared/db/quota/settings.ts';
import { isNotificationMethod } from '../../shared/notifications/methods.ts';
import type { Principal } from '../auth/access.ts';
import { subjectOf } from '../auth/grants.ts';
import { apiErrors } from '../errors.ts';
import { clientIp, parseInput, requireSignedIn, requireUser } from './common.ts';
import { createNotificationBody, validateMethodFor } from './notification-input.ts';
import { sampleEventData } from './notification-samples.ts';

/** The events a namespace notification may watch (Quay's VALID_NAMESPACE_EVENTS). */
export const NAMESPACE_EVENTS = ['quota_error', 'quota_warning'] as const;

/** Quay's view of a namespace notification (the repository notification's fields). */
function view(row: NamespaceNotificationRow): Record<string, unknown> {
  return {
    uuid: row.uuid, title: row.title, event: row.event, method: row.method,
    config: row.config_json, event_config: row.event_config_json, number_of_failures: row.number_of_failures,
  };
}

interface Owner {
  readonly principal: Principal & { id: number; username: string };
  readonly namespace: NamespaceRow;
}

/** Registers both route families inside the /api/v1 scope. */
export async function registerNamespaceNotificationRoutes(app: FastifyInstance): Promise<void> {
  if (!quotaSettings(app.deps.config).enabled) return;
  routes(app, '/organization/:org/notifications', organizationOf);
  routes(app, '/user/namespacenotifications', ownNamespace);
}

function routes(app: FastifyInstance, base: string, ownerOf: (request: FastifyRequest) => Promise<Owner>): void {
  app.get(base, async (request) => {
    const { namespace } = await ownerOf(request);
    return { notifications: (await listNamespaceNotifications(app.deps.db, namespace.id)).map(view) };
  });

  app.post(base, async (request, reply) => {
    const owner = await ownerOf(request);
    const body = parseInput(createNotificationBody, request.body, 'notification');
    if (!(NAMESPACE_EVENTS as readonly string[]).includes(body.event)) {
      throw apiErrors.badRequest(`Invalid event '${body.event}'. Must be one of: ${NAMESPACE_EVENTS.join(', ')}`);
    }
    if (!isNotificationMethod(body.method)) throw apiErrors.badRequest(`Unknown notification method '${body.method}'`);
    const config = await validateMethodFor(app, { namespaceId: owner.namespace.id, namespace: owner.namespace.username }, body.method, body.config);
    const row = await withTransaction(app.deps.db, async (tx) => {
      const created = await createNamespaceNotification(tx, {
        namespaceId: owner.namespace.id, event: body.event as (typeof NAMESPACE_EVENTS)[number], method: body.method,
        config, eventConfig: body.eventConfig, title: body.title ?? null,
      });
      await auditLog(tx, 'create_namespace_notification', request, owner, created);
      return created;
    });
    return reply.status(201).send(view(row));
  });

  app.get(`${base}/:uuid`, async (request) => {
    const { namespace } = await ownerOf(request);
    const row = await findNamespaceNotification(app.deps.db, namespace.id, uuidOf(request));
    if (!row) throw apiErrors.notFound();
    return view(row);
  });

  app.delete(`${base}/:uuid`, async (request, reply) => {
    const owner = await ownerOf(request);
    await withTransaction(app.deps.db, async (tx) => {
      const row = await deleteNamespaceNotification(tx, owner.namespace.id, uuidOf(request));
      if (!row) throw apiErrors.notFound();
      await auditLog(tx, 'delete_namespace_notification', request, owner, row);
    });
    return reply.status(204).send();
  });

  // Quay's resetOrgNotificationFailures / resetUserNamespaceNotificationFailures.
  app.post(`${base}/:uuid`, async (request, reply) => {
    const owner = await ownerOf(request);
    await withTransaction(app.deps.db, async (tx) => {
      const row = await resetNamespaceNotificationFailures(tx, owner.namespace.id, uuidOf(request));
      if (!row) throw apiErrors.notFound();
      await auditLog(tx, 'reset_namespace_notification', request, owner, row);
    });
    return reply.status(204).send();
  });

  app.post(`${base}/:uuid/test`, async (request) => {
    const { namespace } = await ownerOf(request);
    await withTransaction(app.deps.db, async (tx) => {
      const row = await findNamespaceNotification(tx, namespace.id, uuidOf(request));
      if (!row) throw apiErrors.notFound();
      // A disabled notification would drop the job unsent: queue nothing, as for repository notifications.
      if (row.number_of_failures >= NOTIFICATION_FAILURE_LIMIT) return;
      await enqueueInTransaction(tx, notification, {
        v: 1, notificationUuid: row.uuid, eventId: randomUUID(), event: row.event as (typeof NAMESPACE_EVENTS)[number],
        eventData: sampleEventData(row.event, namespace.username), performerData: {}, notificationType: 'namespace',
      });
    });
    app.deps.onOutboxWrite?.();
    return {};
  });
}

function uuidOf(request: FastifyRequest): string {
  return parseInput(z.object({ uuid: z.string().min(1) }), request.params).uuid;
}

/**
 * The organization of the path, for its admins and superusers. Others get 403 whether or not it
 * exists (only those allowed learn that); a superuser gets 404 for a missing one.
 */
async function organizationOf(request: FastifyRequest): Promise<Owner> {
  const principal = await requireSignedIn(request);
  const { deps } = request.server;
  const { org: name } = parseInput(z.object({ org: z.string().min(1) }), request.params);
  const found = await findNamespace(deps.db, name);
  const namespace = found?.organization && !found.deleted ? found : undefined;
  if (namespace && (principal.superuser || await isNamespaceAdmin(deps.db, subjectOf(deps, principal), namespace.id))) return { principal, namespace };
  if (principal.superuser) throw apiErrors.notFound();
  throw apiErrors.forbidden();
}

/** The signed-in user's own namespace (robots and anonymous callers refused). */
async function ownNamespace(request: FastifyRequest): Promise<Owner> {
  const principal = await requireUser(request);
  const namespace = await findNamespace(request.server.deps.db, principal.username);
  if (!namespace) throw apiErrors.unauthorized('Requires authentication');
  return { principal, namespace };
}

async function auditLog(tx: Queryable, kind: LogKind, request: FastifyRequest, owner: Owner, row: NamespaceNotificationRow): Promise<void> {
  await logAction(tx, request.server.deps.config.quay, {
    kind, namespace: { id: owner.namespace.id, name: owner.namespace.username }, performerId: owner.principal.id, ip: clientIp(request),
    metadata: { namespace: owner.namespace.username, notification_id: row.uuid, event: row.event, method: row.method },
  });
}
