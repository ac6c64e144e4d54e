/**
 * Repositories: create, list, get, change visibility, delete (Quay's two-step delete: the mark
 * runs here, in one transaction; the repositorygc worker purges).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { markRepositoryForDeletion } from '../../shared/db/deletion-markers.ts';
import { logAction } from '../../shared/db/logs.ts';
import { getNamespaceById } from '../../shared/db/namespaces.ts';
import { resolveRepositoryAccess, roleAtLeast } from '../../shared/db/permissions.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { isValidRepositoryName, RepositoryExistsError } from '../../shared/db/repositories.ts';
import { listTagHistory, MANIFEST_LIST_MEDIA_TYPES } from '../../shared/db/tag-history.ts';
import { nowMs } from '../auth/credentials.ts';
import { createRepositoryFor, subjectOf } from '../auth/grants.ts';
import { apiErrors } from '../errors.ts';
import { clientIp, parseInput, repositoryParams, requireRepositoryRole, requireSignedIn } from './common.ts';
import { listRepositories } from './repository-list.ts';
import { formatDate, repositoryView } from './views.ts';

const createBody = z.object({
  repository: z.string().min(1),
  namespace: z.string().min(1).optional(),
  visibility: z.enum(['public', 'private']),
  description: z.string().nullable().optional(),
  repo_kind: z.enum(['image', 'application']).nullable().optional(),
});

const visibilityBody = z.object({ visibility: z.enum(['public', 'private']) });

/** Registers the repository routes. */
export async function registerRepositoryRoutes(app: FastifyInstance): Promise<void> {
  app.post('/repository', async (request, reply) => createRepositoryRoute(app, request, reply));

  app.get('/repository', async (request) => listRepositories(request));

  app.get('/repository/:namespace/:repository', async (request) => {
    const { namespace, repository } = parseInput(repositoryParams, request.params);
    const query = parseInput(z.object({ includeTags: z.enum(['true', 'false']).optional() }), request.query, 'query');
    const { repository: repo, access } = await requireRepositoryRole(request, namespace, repository, 'read');
    const owner = (await getNamespaceById(app.deps.db, repo.namespace_user_id))!;
    return {
      ...repositoryView(repo), is_organization: owner.organization, is_starred: false, status_token: '', trust_enabled: false,
      is_free_account: true, tag_expiration_s: owner.removed_tag_expiration_s,
      can_write: roleAtLeast(access.role, 'write'), can_admin: roleAtLeast(access.role, 'admin'),
      ...(query.includeTags === 'false' ? {} : { tags: await activeTags(app, repo.id) }),
    };
  });

  app.post('/repository/:namespace/:repository/changevisibility', async (request) => {
    const { namespace, repository } = parseInput(repositoryParams, request.params);
    const { principal, repository: repo } = await requireRepositoryRole(request, namespace, repository, 'admin');
    const { visibility } = parseInput(visibilityBody, request.body, 'visibility change');
    await withTransaction(app.deps.db, async (tx) => {
      await tx.query(`UPDATE repository SET visibility = $2 WHERE id = $1`, [repo.id, visibility]);
      await logAction(tx, app.deps.config.quay, {
        kind: 'change_repo_visibility', namespace: { id: repo.namespace_user_id, name: repo.namespace }, performerId: principal.id ?? null, repositoryId: repo.id,
        ip: clientIp(request), metadata: { repo: repo.name, namespace: repo.namespace, visibility },
      });
    });
    return { success: true };
  });

  app.delete('/repository/:namespace/:repository', async (request, reply) => {
    const { namespace, repository } = parseInput(repositoryParams, request.params);
    const { principal, repository: repo } = await requireRepositoryRole(request, namespace, repository, 'admin');
    await withTransaction(app.deps.db, (tx) => markRepositoryForDeletion(tx, repo, { performerId: principal.id ?? null, ip: clientIp(request), logs: app.deps.config.quay }));
    app.deps.onOutboxWrite?.();
    return reply.status(204).send();
  });
}

/** POST /repository: Quay's create; 201 `{namespace, name, kind}`. */
async function createRepositoryRoute(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const principal = await requireSignedIn(request);
  const body = parseInput(createBody, request.body, 'repository');
  if ((body.repo_kind ?? 'image') !== 'image') throw apiErrors.badRequest('Only image repositories are supported');
  if (!isValidRepositoryName(body.repository)) throw apiErrors.badRequest('Invalid repository name');
  const namespace = body.namespace ?? principal.username;
  const before = await resolveRepositoryAccess(app.deps.db, subjectOf(app.deps, principal), namespace, body.repository);
  if (!before.canCreate || before.namespaceId === null) throw apiErrors.forbidden();
  if (before.repository) throw apiErrors.badRequest('Repository already exists');
  try {
    const input = { namespaceId: before.namespaceId, name: body.repository, visibility: body.visibility, description: body.description ?? null, ip: clientIp(request) };
    await createRepositoryFor(app.deps, principal, input, before, { ifAbsent: false });
  } catch (error) {
    if (error instanceof RepositoryExistsError) throw apiErrors.badRequest('Repository already exists');
    throw error;
  }
  return reply.status(201).send({ namespace, name: body.repository, kind: 'image' });
}

// Quay's repository view carries the alive tags keyed by name (first page only).
async function activeTags(app: FastifyInstance, repositoryId: number): Promise<Record<string, unknown>> {
  const { rows } = await listTagHistory(app.deps.db, { repositoryId, nowMs: nowMs(app.deps), page: 1, limit: 100, onlyActive: true });
  return Object.fromEntries(rows.map((tag) => [tag.name, {
    name: tag.name, manifest_digest: tag.manifest_digest, size: tag.layers_compressed_size,
    is_manifest_list: MANIFEST_LIST_MEDIA_TYPES.includes(tag.media_type ?? ''), last_modified: formatDate(tag.lifetime_start_ms),
  }]));
}
