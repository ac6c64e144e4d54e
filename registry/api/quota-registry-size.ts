/**
 * `/api/v1/superuser/registrysize/` (Quay's SuperUserRegistrySize): GET reports
 * `{size_bytes, last_ran, queued, running}` ("Total Registry Size ... Updated: Never" until the
 * first run: `last_ran: null`); POST queues a computation, 201 when queued now, 202 when one is
 * already queued or running. Superusers only.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { readRegistrySize, requestRegistrySize } from '../../shared/db/quota/registry-size.ts';
import { apiErrors } from '../errors.ts';
import { requireUser } from './common.ts';

async function requireSuperuser(request: FastifyRequest): Promise<void> {
  const principal = await requireUser(request);
  if (!principal.superuser) throw apiErrors.forbidden();
}

/** Registers the registry-total routes (inside the quota plugin, so only with quota management on). */
export function registerRegistrySizeRoutes(app: FastifyInstance): void {
  app.get('/superuser/registrysize/', async (request) => {
    await requireSuperuser(request);
    return readRegistrySize(app.deps.db);
  });

  app.post('/superuser/registrysize/', async (request, reply) => {
    await requireSuperuser(request);
    const { alreadyQueued } = await requestRegistrySize(app.deps.db);
    app.deps.onOutboxWrite?.();
    return reply.status(alreadyQueued ? 202 : 201).type('application/json').send('""');
  });
}
