/**
 * Repository notifications (Quay's endpoints/api/repositorynotification.py) and the in-app
 * notifications of the signed-in user (endpoints/api/user.py); namespace notifications are in
 * namespace-notifications.ts. Same paths and JSON shapes:
 * `{uuid, title, event, method, config, event_config, number_of_failures}`; the create body uses
 * Quay's camelCase `eventConfig`. Webhook and Slack URLs pass the SSRF checks at creation; an
 * e-mail address must be confirmed for the repository first (authorized-emails.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { NOTIFICATION_EVENTS } from '../../queues/notification.ts';
import { findAuthorizedEmail } from '../../shared/db/authorized-emails.ts';
import { logAction, type LogKind } from '../../shared/db/logs.ts';
import {
  createRepositoryNotification, deleteRepositoryNotification, enqueueRepositoryEvents, findRepositoryNotification,
  listRepositoryNotifications, resetRepositoryNotificationFailures, type RepositoryNotificationRow,
} from '../../shared/db/notifications.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import type { Queryable } from '../../shared/db/pool.ts';
import type { RepositoryRow } from '../../shared/db/repositories.ts';
import { isNotificationMethod } from '../../shared/notifications/methods.ts';
import { isSeverity, SEVERITIES } from '../../shared/notifications/severity.ts';
import type { Principal } from '../auth/access.ts';
import { apiErrors } from '../errors.ts';
import { clientIp, parseInput, repositoryParams, requireRepositoryRole } from './common.ts';
import { createNotificationBody, validateMethodFor } from './notification-input.ts';
import { sampleEventData } from './notification-samples.ts';
import { registerAuthorizedEmailRoutes } from './authorized-emails.ts';
import { registerNamespaceNotificationRoutes } from './namespace-notifications.ts';
import { registerUserNotificationRoutes } from './user-notifications.ts';

const notificationParams = repositoryParams.extend({ uuid: z.string().min(1) });

/** Quay's view of a repository notification. */
export function notificationView(row: RepositoryNotificationRow): Record<string, unknown> {
  return {
    uuid: row.uuid, title: row.title, event: row.event, method: row.method,
    config: row.config_json, event_config: row.event_config_json, number_of_failures: row.number_of_failures,
  };
}

/** Registers the notification routes. */
export async function registerNotificationRoutes(app: FastifyInstance): Promise<void> {
  const base = '/repository/:namespace/:repository/notification';

  app.get(`${base}/`, async (request) => {
    const { repository } = await adminOf(request);
    return { notifications: (await listRepositoryNotifications(app.deps.db, repository.id)).map(notificationView) };
  });

  app.post(`${base}/`, async (request, reply) => {
    const { principal, repository } = await adminOf(request);
    const body = parseInput(createNotificationBody, request.body, 'notification');
    const input = await validateCreate(app, repository, body);
    const row = await withTransaction(app.deps.db, async (tx) => {
      const created = await createRepositoryNotification(tx, input);
      await auditLog(tx, 'add_repo_notification', request, principal, repository, created);
      return created;
    });
    return reply.status(201).send(notificationView(row));
  });

  app.get(`${base}/:uuid`, async (request) => {
    const { repository, uuid } = await adminOf(request);
    const row = await findRepositoryNotification(app.deps.db, repository.id, uuid);
    if (!row) throw apiErrors.notFound();
    return notificationView(row);
  });

  app.delete(`${base}/:uuid`, async (request, reply) => {
    const { principal, repository, uuid } = await adminOf(request);
    await withTransaction(app.deps.db, async (tx) => {
      const row = await deleteRepositoryNotification(tx, repository.id, uuid);
      if (!row) throw notFoundFor(repository, uuid);
      await auditLog(tx, 'delete_repo_notification', request, principal, repository, row);
    });
    return reply.status(204).send();
  });

  // Quay's resetRepositoryNotificationFailures: re-enables a notification disabled by failures.
  app.post(`${base}/:uuid`, async (request, reply) => {
    const { principal, repository, uuid } = await adminOf(request);
    await withTransaction(app.deps.db, async (tx) => {
      const row = await resetRepositoryNotificationFailures(tx, repository.id, uuid);
      if (!row) throw notFoundFor(repository, uuid);
      await auditLog(tx, 'reset_repo_notification', request, principal, repository, row);
    });
    return reply.status(204).send();
  });

  // Sends the event's sample data to this one notification, disabled or not (it is then skipped).
  app.post(`${base}/:uuid/test`, async (request) => {
    const { repository, uuid } = await adminOf(request);
    await withTransaction(app.deps.db, async (tx) => {
      const row = await findRepositoryNotification(tx, repository.id, uuid);
      if (!row) throw notFoundFor(repository, uuid);
      await enqueueTest(tx, app, repository, row);
    });
    app.deps.onOutboxWrite?.();
    return {};
  });

  await app.register(registerUserNotificationRoutes);
  await app.register(registerNamespaceNotificationRoutes);
  await app.register(registerAuthorizedEmailRoutes);
}

async function adminOf(request: FastifyRequest) {
  const params = parseInput(notificationParams.partial({ uuid: true }), request.params);
  const { principal, repository } = await requireRepositoryRole(request, params.namespace, params.repository, 'admin');
  return { principal, repository, uuid: params.uuid ?? '' };
}

function notFoundFor(repository: RepositoryRow, uuid: string) {
  return apiErrors.badRequest(`No repository notification found for: ${repository.namespace}, ${repository.name}, ${uuid}`);
}

async function validateCreate(app: FastifyInstance, repository: RepositoryRow, body: z.output<typeof createNotificationBody>) {
  if (!(NOTIFICATION_EVENTS as readonly string[]).includes(body.event)) throw apiErrors.badRequest(`Unknown event: ${body.event}`);
  if (!isNotificationMethod(body.method)) throw apiErrors.badRequest(`Unknown method: ${body.method}`);
  const config = await validateMethodFor(app, { namespaceId: repository.namespace_user_id, namespace: repository.namespace }, body.method, body.config);
  if (body.method === 'email') await checkEmailAuthorized(app.deps.db, repository, config.email as string);
  if (body.event === 'vulnerability_found') checkSeverityConfig(body.eventConfig);
  return {
    repositoryId: repository.id, event: body.event as (typeof NOTIFICATION_EVENTS)[number], method: body.method,
    config, eventConfig: body.eventConfig, title: body.title ?? null,
  };
}

// Quay's EmailMethod.validate: a repository mails only addresses confirmed for it (authorized-emails.ts).
async function checkEmailAuthorized(db: Queryable, repository: RepositoryRow, email: string): Promise<void> {
  if (!(await findAuthorizedEmail(db, repository.id, email))?.confirmed) {
    throw apiErrors.badRequest('The specified e-mail address is not authorized to receive notifications for this repository');
  }
}

function checkSeverityConfig(eventConfig: Record<string, unknown>): void {
  const priority = (eventConfig.vulnerability as Record<string, unknown> | undefined)?.priority;
  if (priority !== undefined && !isSeverity(priority)) {
    throw apiErrors.badRequest(`Invalid vulnerability priority: must be one of ${SEVERITIES.join(', ')}`);
  }
  const level = eventConfig.level;
  if (level !== undefined && level !== null && level !== '' && !/^[0-5]$/.test(String(level))) {
    throw apiErrors.badRequest('Invalid vulnerability level: must be 0 (Critical) to 5 (Unknown)');
  }
}

async function enqueueTest(tx: Queryable, app: FastifyInstance, repository: RepositoryRow, row: RepositoryNotificationRow): Promise<void> {
  // The targets query skips disabled notifications, as delivery would; a test of a disabled one is a no-op.
  await enqueueRepositoryEvents(tx, row.event as (typeof NOTIFICATION_EVENTS)[number], [{
    repositoryId: repository.id, eventData: sampleEventData(row.event, repository.namespace),
  }], { site: app.deps.config.quay, onlyNotification: row.uuid });
}

async function auditLog(tx: Queryable, kind: LogKind, request: FastifyRequest, principal: Principal, repository: RepositoryRow, row: RepositoryNotificationRow): Promise<void> {
  await logAction(tx, request.server.deps.config.quay, {
    kind, namespace: { id: repository.namespace_user_id, name: repository.namespace }, performerId: principal.id ?? null, repositoryId: repository.id, ip: clientIp(request),
    metadata: { repo: repository.name, namespace: repository.namespace, notification_id: row.uuid, event: row.event, method: row.method },
  });
}
