/**
 * The front end as a Fastify app, separate from process concerns (registry/server.ts): the OCI
 * distribution API under /v2, token auth at /v2/auth, the Quay API subset under /api/v1, and the
 * health endpoints. Tests build it with `buildRegistryApp(deps)` and use `inject()`.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { RegistryDeps } from './deps.ts';
import { installErrorHandling } from './error-handler.ts';
import { answerFrameworkError, installInputGuard } from './input-guard.ts';
import { registerAuthRoutes } from './auth/routes.ts';
import { registerV2Routes } from './v2/index.ts';
import { registerApiRoutes } from './api/index.ts';
import { registerHealthRoutes } from './health.ts';
import { registerSecScanRoutes } from './secscan.ts';
import { registerExportedLogsRoute } from './exported-logs.ts';
import { registerEmailConfirmationRoute } from './api/authorized-emails.ts';

declare module 'fastify' {
  interface FastifyInstance {
    deps: RegistryDeps;
  }
}

/** Builds the front end; call `listen()` on the result (server.ts) or `inject()` (tests). */
export async function buildRegistryApp(deps: RegistryDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    // Blob uploads stream straight to storage; JSON bodies (manifests, API) are bounded.
    bodyLimit: deps.config.quay.MAXIMUM_MANIFEST_SIZE_BYTES,
    requestIdHeader: 'x-request-id',
    // Repository names contain slashes; keep the router strict about everything else.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
    trustProxy: true,
    // A path the router cannot decode gets the input guard's 400 in the route's error shape.
    frameworkErrors: answerFrameworkError,
  });
  app.decorate('deps', deps);
  installErrorHandling(app);
  installInputGuard(app);
  await app.register(registerAuthRoutes);
  await app.register(registerV2Routes);
  await app.register(registerApiRoutes);
  await app.register(registerHealthRoutes);
  await app.register(registerSecScanRoutes);
  await app.register(registerExportedLogsRoute);
  await app.register(registerEmailConfirmationRoute);
  if (deps.config.queueConsole) {
    if (!deps.queues) throw new Error('QUAYFLEET_QUEUE_CONSOLE is on but the front end was given no queues');
    // Loaded only when on: bull-board and its UI assets stay out of a front end that does not serve them.
    const { registerQueueConsole } = await import('./queue-console.ts');
    await registerQueueConsole(app, deps.queues);
  }
  return app;
}
