/**
 * `GET /api/v1/repository`: the repositories the caller may see, filtered as Quay does
 * (`namespace`, `public`, `starred`), 100 per page, with an opaque `next_page` token.
 *
 * quayfleet keeps no stars, so `starred=true` alone lists nothing; `popularity` is always 0 (Quay
 * derives it from action counts, which quayfleet does not aggregate).
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { visibleRepositoryCondition } from '../../shared/db/permissions.ts';
import type { RepositoryRow } from '../../shared/db/repositories.ts';
import { subjectOf } from '../auth/grants.ts';
import { apiErrors } from '../errors.ts';
import { apiPrincipalOf, parseInput, truthyBool } from './common.ts';
import { repositoryQuotaFields } from './quota-views.ts';
import { repositoryView } from './views.ts';

/** Quay's REPOS_PER_PAGE. */
export const REPOSITORIES_PER_PAGE = 100;

const listQuery = z.object({
  namespace: z.string().min(1).optional(),
  public: truthyBool.optional(),
  starred: truthyBool.optional(),
  last_modified: truthyBool.optional(),
  popularity: truthyBool.optional(),
  next_page: z.string().optional(),
  repo_kind: z.string().optional(),
  quota: truthyBool.optional(),
});

const pageToken = z.object({ after: z.number().int().nonnegative() });

function decodePageToken(token: string | undefined): number {
  if (token === undefined) return 0;
  try {
    const parsed = pageToken.safeParse(JSON.parse(Buffer.from(token, 'base64url').toString('utf8')));
    if (parsed.success) return parsed.data.after;
  } catch {
    // fall through: not base64 JSON
  }
  throw apiErrors.badRequest('Invalid next_page token');
}

/** Runs the listing for `request` and returns Quay's `{repositories, next_page?}`. */
export async function listRepositories(request: FastifyRequest): Promise<Record<string, unknown>> {
  const query = parseInput(listQuery, request.query, 'query');
  if (!query.namespace && !query.public && !query.starred) {
    throw apiErrors.badRequest('You must specify either starred=true, a namespace or public=true');
  }
  const after = decodePageToken(query.next_page);
  if (!query.namespace && !query.public) return { repositories: [] };
  if (query.repo_kind !== undefined && query.repo_kind !== 'image') return { repositories: [] };
  const deps = request.server.deps;
  const principal = await apiPrincipalOf(request);
  const filter = visibleRepositoryCondition(subjectOf(deps, principal), 4, { includePublic: query.public ?? false });
  const { rows } = await deps.db.query<RepositoryRow & { last_modified_ms: number | null }>(
    `SELECT r.id, r.namespace_user_id, n.username AS namespace, r.name, r.visibility, r.kind, r.state, r.description, r.created,
            (SELECT max(GREATEST(t.lifetime_start_ms, COALESCE(t.lifetime_end_ms, 0))) FROM tag t
             WHERE t.repository_id = r.id AND NOT t.hidden) AS last_modified_ms
     FROM repository r JOIN namespace n ON n.id = r.namespace_user_id
     WHERE r.id > $1 AND ($2::text IS NULL OR n.username = $2) AND ${filter.sql}
     ORDER BY r.id LIMIT $3`,
    [after, query.namespace ?? null, REPOSITORIES_PER_PAGE + 1, ...filter.params]);
  const page = rows.slice(0, REPOSITORIES_PER_PAGE);
  const quotaReports = query.quota ? await repositoryQuotaFields(deps, page) : undefined;
  const repositories = page.map((row) => ({
    ...repositoryView(row), is_starred: false,
    ...(query.last_modified ? { last_modified: row.last_modified_ms === null ? null : Math.floor(row.last_modified_ms / 1000) } : {}),
    ...(query.popularity ? { popularity: 0 } : {}),
    ...(quotaReports ? { quota_report: quotaReports.get(row.id) } : {}),
  }));
  const last = page[page.length - 1];
  const nextPage = rows.length > REPOSITORIES_PER_PAGE && last
    ? Buffer.from(JSON.stringify({ after: last.id })).toString('base64url') : undefined;
  return nextPage ? { repositories, next_page: nextPage } : { repositories };
}
