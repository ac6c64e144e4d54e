/**
 * GET /api/v1/superuser/gc/dryrun?namespace=&repository=&limit=: what GC would collect now (tags,
 * manifests, blobs and bytes per namespace), for superusers only. Reads only. Register this plugin
 * inside the /api/v1 scope (registry/api/index.ts).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { dryRun, presentDryRun, ScopeNotFoundError } from '../../shared/db/gc/dry-run.ts';
import { apiErrors } from '../errors.ts';
import { parseInput, requireUser } from './common.ts';

const query = z.object({
  namespace: z.string().min(1).optional(),
  repository: z.string().min(1).optional(),
  /** Items listed per kind (tags, manifests, blobs); the figures always cover everything. */
  limit: z.coerce.number().int().min(0).max(10_000).default(100),
});

/** Registers the superuser GC dry-run route. */
export async function registerGcRoutes(app: FastifyInstance): Promise<void> {
  app.get('/superuser/gc/dryrun', async (request) => {
    const principal = await requireUser(request);
    if (!principal.superuser) throw apiErrors.forbidden();
    const { namespace, repository, limit } = parseInput(query, request.query);
    try {
      const report = await dryRun(app.deps.db, { namespace, repository }, { nowMs: app.deps.now?.() });
      return presentDryRun(report, limit, app.deps.config.imageRegistry);
    } catch (error) {
      if (error instanceof ScopeNotFoundError) throw apiErrors.notFound(error.message);
      throw error;
    }
  });
}
