/**
 * Log export requests (Quay's `exportlogs` resources): `POST /repository/{ns}/{repo}/exportlogs`
 * (repository admins), `/organization/{org}/exportlogs` (its admins), `/user/exportlogs` (the
 * caller's own namespace). The request is checked (dates, callback URL against the SSRF rules,
 * callback e-mail), recorded in `logexport` with its outbox job in one transaction, audited
 * (`export_logs_success` / `export_logs_failure`), and answered `{"export_id": ...}`.
 *
 * The range is exactly the days asked: [starttime 00:00, endtime + 1 day 00:00) UTC. Quay's
 * worker adds a further day (reference §4.2 step 2); quayfleet does not.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { exportactionlogs } from '../../queues/exportactionlogs.ts';
import { logAction } from '../../shared/db/logs.ts';
import type { NamespaceRow } from '../../shared/db/namespaces.ts';
import { enqueueInTransaction } from '../../shared/db/outbox.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import type { RepositoryRow } from '../../shared/db/repositories.ts';
import { checkUrlTarget, ssrfPolicyOf, SsrfRefusedError } from '../../shared/net/ssrf.ts';
import type { Principal } from '../auth/access.ts';
import { nowMs } from '../auth/credentials.ts';
import { apiErrors, ApiError } from '../errors.ts';
import { clientIp, parseInput, repositoryParams, requireOrganizationAdmin, requireRepositoryRole, requireUser } from './common.ts';
import { formatLogDate, logTimeSpan, parseLogQuery } from './log-dates.ts';
import { requireDatabaseLogsModel } from './logs.ts';

// Quay's ExportLogs schema: two optional strings; anything else in the body is ignored.
const exportBody = z.object({
  callback_url: z.string().max(2048).optional(),
  callback_email: z.string().max(320).optional(),
});
const orgParams = z.object({ org: z.string().min(1) });

interface ExportTarget {
  readonly namespace: Pick<NamespaceRow, 'id' | 'username'>;
  readonly repository?: RepositoryRow;
  readonly principal: Principal;
}

/** Registers the three exportlogs routes (gate: FEATURE_LOG_EXPORT, as Quay's show_if). */
export async function registerLogExportRoutes(app: FastifyInstance): Promise<void> {
  app.post('/repository/:namespace/:repository/exportlogs', async (request) => {
    requireExport(request);
    const { namespace, repository } = parseInput(repositoryParams, request.params);
    const { principal, repository: repo } = await requireRepositoryRole(request, namespace, repository, 'admin');
    return queueExport(request, { namespace: { id: repo.namespace_user_id, username: repo.namespace }, repository: repo, principal });
  });
  app.post('/organization/:org/exportlogs', async (request) => {
    requireExport(request);
    const { org } = parseInput(orgParams, request.params);
    const { principal, organization } = await requireOrganizationAdmin(request, org);
    return queueExport(request, { namespace: organization, principal });
  });
  app.post('/user/exportlogs', async (request) => {
    requireExport(request);
    const principal = await requireUser(request);
    return queueExport(request, { namespace: { id: principal.id, username: principal.username }, principal });
  });
}

function requireExport(request: FastifyRequest): void {
  if (!request.server.deps.config.quay.FEATURE_LOG_EXPORT) throw apiErrors.notFound();
  requireDatabaseLogsModel(request);
}

async function queueExport(request: FastifyRequest, target: ExportTarget): Promise<{ export_id: string }> {
  const deps = request.server.deps;
  const query = parseLogQuery(request.query);
  const body = parseInput(exportBody, request.body, 'export request');
  const url = body.callback_url?.trim() || undefined;
  const email = body.callback_email?.trim() || undefined;
  try {
    if (url === undefined && email === undefined) throw apiErrors.badRequest('Invalid export request: give a callback_url, a callback_email or both');
    if (url !== undefined) await checkCallbackUrl(request, url);
    if (email !== undefined && !email.includes('@')) throw apiErrors.badRequest('Invalid callback e-mail');
    const span = logTimeSpan(query, nowMs(deps), { wholeDays: true });
    const exportId = randomUUID();
    await withTransaction(deps.db, async (tx) => {
      await tx.query(
        `INSERT INTO logexport (export_id, namespace_id, repository_id, requested_by, start_time, end_time, callback_url, callback_email,
                                namespace_name, repository_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [exportId, target.namespace.id, target.repository?.id ?? null, target.principal.id ?? null, span.start, span.end, url ?? null, email ?? null,
          target.namespace.username, target.repository?.name ?? null]);
      await enqueueInTransaction(tx, exportactionlogs, { v: 1, exportId, namespaceId: target.namespace.id, namespace: target.namespace.username });
      await audit(request, tx, target, 'export_logs_success', {
        export_id: exportId, message: 'queued for export', url: url ?? null, email: email ?? null,
        start_time: formatLogDate(span.start), end_time: formatLogDate(new Date(span.end.getTime() - 1)),
      });
    });
    deps.onOutboxWrite?.();
    return { export_id: exportId };
  } catch (error) {
    if (error instanceof ApiError && error.status === 400) {
      await audit(request, deps.db, target, 'export_logs_failure', { error: error.message, url: url ?? null, email: email ?? null });
    }
    throw error;
  }
}

async function checkCallbackUrl(request: FastifyRequest, url: string): Promise<void> {
  if (!/^https?:\/\//i.test(url)) throw apiErrors.badRequest('Invalid callback URL');
  try {
    await checkUrlTarget(ssrfPolicyOf(request.server.deps.config.quay), url);
  } catch (error) {
    if (error instanceof SsrfRefusedError) throw apiErrors.badRequest(`Invalid callback URL: ${error.message}`);
    throw error;
  }
}

type Db = Parameters<typeof logAction>[0];

async function audit(request: FastifyRequest, db: Db, target: ExportTarget, kind: 'export_logs_success' | 'export_logs_failure', extra: Record<string, unknown>): Promise<void> {
  const now = new Date(nowMs(request.server.deps));
  await logAction(db, request.server.deps.config.quay, {
    kind, namespace: { id: target.namespace.id, name: target.namespace.username }, performerId: target.principal.id ?? null,
    repositoryId: target.repository?.id ?? null, ip: clientIp(request),
    metadata: {
      'date/time': `${formatLogDate(now)} ${now.toISOString().slice(11, 16)}`, ...extra,
      ...(target.repository ? { repo: target.repository.name } : {}),
    },
  });
}
