/**
 * The Quay API subset under /api/v1: repositories, tags (with the time machine), organizations,
 * teams, robots, repository permissions, users, app tokens. Same paths and JSON shapes as Quay.
 * In a read-only registry every write answers Quay's 503 read_only before anything else runs.
 */
import type { FastifyInstance } from 'fastify';
import { apiErrors } from '../errors.ts';
import { refuseNulInJson } from '../input-guard.ts';
import { registerOrganizationRoutes } from './organizations.ts';
import { registerPermissionRoutes } from './permissions.ts';
import { registerRepositoryRoutes } from './repositories.ts';
import { registerTagRoutes } from './tags.ts';
import { registerTeamRoutes } from './teams.ts';
import { registerUserRoutes } from './users.ts';
import { registerGcRoutes } from './gc.ts';
import { registerQuotaRoutes } from './quota.ts';
import { registerLogRoutes } from './logs.ts';
import { registerLogExportRoutes } from './log-export.ts';
import { registerNotificationRoutes } from './notifications.ts';
import { registerMirrorRoutes } from './mirror.ts';
import { registerConfigRoutes } from './config.ts';

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Registers every /api/v1 route. */
export async function registerApiRoutes(app: FastifyInstance): Promise<void> {
  await app.register(async (api) => {
    // Quay's clients send `Content-Type: application/json` on bodiless DELETEs and POSTs; Fastify's
    // default parser refuses an empty JSON body, so this scope reads it as "no body".
    api.removeContentTypeParser('application/json');
    api.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
      if ((body as string).trim() === '') return done(null, undefined);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body as string);
      } catch {
        return done(apiErrors.badRequest('Invalid JSON body'), undefined);
      }
      try {
        refuseNulInJson(parsed);
      } catch (error) {
        return done(error as Error, undefined);
      }
      done(null, parsed);
    });
    api.addHook('onRequest', async (request) => {
      // Validating a config changes nothing, so it works in a read-only registry too.
      if (!READ_METHODS.has(request.method) && api.deps.config.quay.REGISTRY_STATE === 'readonly' && request.routeOptions.url !== '/api/v1/config/validate') throw apiErrors.readOnly();
    });
    await api.register(registerRepositoryRoutes);
    await api.register(registerTagRoutes);
    await api.register(registerPermissionRoutes);
    await api.register(registerOrganizationRoutes);
    await api.register(registerTeamRoutes);
    await api.register(registerUserRoutes);
    await api.register(registerGcRoutes);
    await api.register(registerQuotaRoutes);
    await api.register(registerLogRoutes);
    await api.register(registerLogExportRoutes);
    await api.register(registerNotificationRoutes);
    await api.register(registerMirrorRoutes);
    await api.register(registerConfigRoutes);
  }, { prefix: '/api/v1' });
}
