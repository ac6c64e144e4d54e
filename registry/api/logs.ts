/**
 * Action log lookups (Quay's endpoints/api/logs.py): `/logs` pages (20 entries, newest first,
 * `next_page` token) and `/aggregatelogs` counts per kind and day, for a repository (repository
 * admins), an organization (its admins) and the signed-in user's own namespace. Superusers are
 * admins everywhere, and alone see every namespace's entries at `/superuser/logs` (each with its
 * `namespace`, Quay's include_namespace) and `/superuser/aggregatelogs`. Entries are rendered by Postgres in Quay's view (shared/db/log-views.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { countLogsByKindAndDay, readLogPage, type LogCursor, type LogFilter } from '../../shared/db/log-views.ts';
import { findNamespace } from '../../shared/db/namespaces.ts';
import { nowMs } from '../auth/credentials.ts';
import { apiErrors } from '../errors.ts';
import { apiPrincipalOf, denied, parseInput, repositoryParams, requireOrganizationAdmin, requireRepositoryRole, requireUser } from './common.ts';
import { logTimeSpan, parseLogQuery } from './log-dates.ts';
import { formatDate } from './views.ts';
import { z } from 'zod';

/** Quay's LOGS_PER_PAGE. */
export const LOGS_PER_PAGE = 20;
/** Quay's limit on an aggregate lookup (MAXIMUM_RANGE_SIZE, 31 days). */
const AGGREGATE_MAX_RANGE_MS = 31 * 86_400_000;
/** Kinds the user view leaves out (Quay's SERVICE_LEVEL_LOG_KINDS). */
const SERVICE_LEVEL_LOG_KINDS = ['service_key_create', 'service_key_approve', 'service_key_delete', 'service_key_modify', 'service_key_extend', 'service_key_rotate'];

const orgParams = z.object({ org: z.string().min(1) });

/** 501 "Method not implemented" unless the logs live in the database (Quay's Splunk model answers so). */
export function requireDatabaseLogsModel(request: FastifyRequest): void {
  if (request.server.deps.config.quay.LOGS_MODEL !== 'database') throw apiErrors.notImplemented();
}

/** Registers the /logs and /aggregatelogs routes. */
export async function registerLogRoutes(app: FastifyInstance): Promise<void> {
  app.get('/repository/:namespace/:repository/logs', async (request) => {
    const { namespace, repository } = parseInput(repositoryParams, request.params);
    const { repository: repo } = await requireRepositoryRole(request, namespace, repository, 'admin');
    return logsPage(request, { namespaceId: repo.namespace_user_id, repositoryId: repo.id }, { performer: false });
  });
  app.get('/organization/:org/logs', async (request) => {
    const { org } = parseInput(orgParams, request.params);
    const { organization } = await requireOrganizationAdmin(request, org);
    return logsPage(request, { namespaceId: organization.id }, { performer: true });
  });
  app.get('/user/logs', async (request) => {
    const user = await requireUser(request);
    return logsPage(request, { namespaceId: user.id, excludeKinds: SERVICE_LEVEL_LOG_KINDS }, { performer: true });
  });

  app.get('/repository/:namespace/:repository/aggregatelogs', async (request) => {
    requireAggregates(request);
    const { namespace, repository } = parseInput(repositoryParams, request.params);
    const { repository: repo } = await requireRepositoryRole(request, namespace, repository, 'admin');
    return aggregate(request, { namespaceId: repo.namespace_user_id, repositoryId: repo.id }, { performer: false });
  });
  app.get('/organization/:org/aggregatelogs', async (request) => {
    requireAggregates(request);
    const { org } = parseInput(orgParams, request.params);
    const { organization } = await requireOrganizationAdmin(request, org);
    return aggregate(request, { namespaceId: organization.id }, { performer: true });
  });
  app.get('/user/aggregatelogs', async (request) => {
    requireAggregates(request);
    const user = await requireUser(request);
    return aggregate(request, { namespaceId: user.id, excludeKinds: SERVICE_LEVEL_LOG_KINDS }, { performer: true });
  });

  // Quay's SuperUserLogs and SuperUserAggregateLogs: every namespace, no performer filter, and
  // (unlike the namespace aggregates) not behind FEATURE_AGGREGATED_LOG_COUNT_RETRIEVAL.
  app.get('/superuser/logs', async (request) => {
    await requireSuperuser(request);
    return logsPage(request, { namespaceId: null }, { performer: false, includeNamespace: true });
  });
  app.get('/superuser/aggregatelogs', async (request) => {
    await requireSuperuser(request);
    return aggregate(request, { namespaceId: null }, { performer: false });
  });
}

/** Quay's `Unauthorized()` for a superuser route: 401 when anonymous, 403 for anyone else who is not a superuser. */
async function requireSuperuser(request: FastifyRequest): Promise<void> {
  const principal = await apiPrincipalOf(request);
  if (!principal.superuser) throw denied(principal);
}

function requireAggregates(request: FastifyRequest): void {
  // Quay's show_if(features.AGGREGATED_LOG_COUNT_RETRIEVAL): the route does not exist when off.
  if (!request.server.deps.config.quay.FEATURE_AGGREGATED_LOG_COUNT_RETRIEVAL) throw apiErrors.notFound();
}

type Scope = Pick<LogFilter, 'namespaceId' | 'repositoryId' | 'excludeKinds'>;

/** The filter of a request: its scope, its time span and, where Quay takes one, its performer (undefined: nobody matches). */
async function filterOf(request: FastifyRequest, scope: Scope, options: { performer: boolean }): Promise<{ filter: LogFilter | undefined; query: ReturnType<typeof parseLogQuery> }> {
  requireDatabaseLogsModel(request);
  const query = parseLogQuery(request.query);
  const span = logTimeSpan(query, nowMs(request.server.deps));
  let performerId: number | undefined;
  if (options.performer && query.performer !== undefined) {
    const performer = await findNamespace(request.server.deps.db, query.performer);
    if (!performer) return { filter: undefined, query };
    performerId = performer.id;
  }
  return { filter: { ...scope, ...span, performerId }, query };
}

async function logsPage(request: FastifyRequest, scope: Scope, options: { performer: boolean; includeNamespace?: boolean }): Promise<Record<string, unknown>> {
  const { filter, query } = await filterOf(request, scope, options);
  const span = filter ?? logTimeSpan(query, nowMs(request.server.deps));
  const token = query.next_page === undefined ? undefined : decodePageToken(query.next_page);
  const rows = filter ? await readLogPage(request.server.deps.db, filter, { direction: 'desc', limit: LOGS_PER_PAGE + 1, cursor: token, includeNamespace: options.includeNamespace }) : [];
  const page = rows.slice(0, LOGS_PER_PAGE);
  const pageNumber = (token?.page ?? 0) + 1;
  const maxPage = request.server.deps.config.quay.ACTION_LOG_MAX_PAGE;
  const more = rows.length > LOGS_PER_PAGE && (maxPage == null || pageNumber < maxPage);
  const last = page.at(-1);
  // The entries are JSON text already; parse them back only to embed them in the reply.
  return {
    start_time: formatDate(span.start.getTime()),
    end_time: formatDate(span.end.getTime()),
    logs: page.map((row) => JSON.parse(row.json) as unknown),
    ...(more && last ? { next_page: encodePageToken({ datetime: last.datetime, id: last.id, page: pageNumber }) } : {}),
  };
}

async function aggregate(request: FastifyRequest, scope: Scope, options: { performer: boolean }): Promise<Record<string, unknown>> {
  const { filter } = await filterOf(request, scope, options);
  if (filter && filter.end.getTime() - filter.start.getTime() > AGGREGATE_MAX_RANGE_MS) {
    // Quay raises this as a bare Exception (a 500); it is the caller's range that is wrong.
    throw apiErrors.badRequest('Cannot lookup aggregated logs over a period longer than a month');
  }
  const counts = filter ? await countLogsByKindAndDay(request.server.deps.db, filter) : [];
  return { aggregated: counts.map((c) => ({ kind: c.kind, count: c.count, datetime: formatDate(c.day.getTime()) })) };
}

interface PageToken extends LogCursor {
  readonly page: number;
}

// Postgres's timestamptz text, e.g. 2026-01-02 03:04:05.678912+00.
const TIMESTAMPTZ_TEXT = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2}){0,2}$/;
const pageTokenSchema = z.object({ d: z.string().regex(TIMESTAMPTZ_TEXT), i: z.number().int().nonnegative(), p: z.number().int().positive() });

function encodePageToken(token: PageToken): string {
  return Buffer.from(JSON.stringify({ d: token.datetime, i: token.id, p: token.page })).toString('base64url');
}

function decodePageToken(raw: string): PageToken {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const result = pageTokenSchema.safeParse(parsed);
  if (!result.success) throw apiErrors.badRequest('Invalid next_page token');
  return { datetime: result.data.d, id: result.data.i, page: result.data.p };
}
