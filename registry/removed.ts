/**
 * The front end under `spec.managementState: Removed` (OPS-1). OpenShift's operator removes the
 * registry instance: its deployment is deleted and the route answers 503 for want of a backend.
 * quayfleet's registry pod cannot delete itself, so it runs without the registry instead: no
 * /v2, no /api/v1, no token endpoint, no database writes. The HTTP port stays open and answers
 * every request 503 with distribution's `UNAVAILABLE` and OpenShift's ImageRegistryRemoved text,
 * so a client (docker, podman, skopeo, the Quay API) sees why instead of a connection refused;
 * the metrics port keeps serving `/metrics` (the condition) and `/health/*`. Setting the state
 * back to Managed (or Unmanaged) and restarting the pods brings the registry back, blobs intact
 * (GC pruned metadata only meanwhile, GC-17).
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { IMAGE_REGISTRY_REMOVED_MESSAGE } from '../shared/config/index.ts';
import type { Logger } from '../shared/runtime/logger.ts';
import { OCI_ERRORS } from './errors.ts';

/** The body every request gets: distribution's error envelope, the condition's text in `detail`. */
export const REMOVED_BODY = {
  errors: [{ code: 'UNAVAILABLE', message: OCI_ERRORS.UNAVAILABLE.message, detail: { condition: 'ImageRegistryRemoved', reason: IMAGE_REGISTRY_REMOVED_MESSAGE } }],
} as const;

/** The removed front end: every method and path answers 503 (not listening yet). */
export function buildRemovedApp(log: Logger): FastifyInstance {
  const app = Fastify({ loggerInstance: log.child({ component: 'registry', managementState: 'Removed' }) as FastifyBaseLogger, disableRequestLogging: true });
  // Bodies are never read: any content type is accepted and discarded.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => {
    payload.resume();
    done(null, undefined);
  });
  app.all('*', async (_request, reply) => reply.code(503).header('retry-after', '3600').send(REMOVED_BODY));
  return app;
}
