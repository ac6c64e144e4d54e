/**
 * Quay's health endpoints on the registry port too (HEALTH-1..3): `/health` and
 * `/health/instance`, `/health/endtoend`, `/health/warning`, in Quay's envelope with the HTTP
 * status equal to `status_code`. The checks are the process's own (database, Redis, storage).
 */
import type { FastifyInstance } from 'fastify';
import { runHealthChecks } from '../shared/runtime/health.ts';

const ROUTES = [
  ['/health', 'instance'], ['/health/instance', 'instance'], ['/health/endtoend', 'endtoend'], ['/health/warning', 'warning'],
] as const;

/** Registers the health routes; without checks in deps every service list is empty (200). */
export async function registerHealthRoutes(app: FastifyInstance): Promise<void> {
  for (const [path, kind] of ROUTES) {
    app.get(path, async (_request, reply) => {
      const checks = app.deps.health?.[kind] ?? {};
      const report = await runHealthChecks(checks, { warning: kind === 'warning' });
      return reply.status(report.status_code).send(report);
    });
  }
}
