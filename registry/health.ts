/**
 * Quay's health endpoints on the registry port too (HEALTH-1..3): `/health` and
 * `/health/instance`, `/health/endtoend`, `/health/warning`, in Quay's envelope with the HTTP
 * status equal to `status_code`; and Quay's `/_internal_ping` and `/v1/_internal_ping`, which the
 * `web_gunicorn` and `registry_gunicorn` checks request over loopback, as Quay's do.
 *
 * The front end answers Quay's keys (health/services.py), each backed by a real check:
 *
 * | key | what is checked |
 * |---|---|
 * | `auth` | the user store answers the lookup a login runs (Quay pings its auth engine; quayfleet's is the database) |
 * | `database` | Postgres answers `SELECT 1` |
 * | `disk_space` | the working, temp and LocalStorage volumes keep `DISKSPACE_HEALTH_THRESHOLD` (1 %) free |
 * | `registry_gunicorn` | `GET /v1/_internal_ping` on this process's own HTTP listener answers 200 |
 * | `web_gunicorn` | `GET /_internal_ping` on this process's own HTTP listener answers 200 |
 * | `service_key` | a registry token signed with this instance's key verifies (key present, 32+ bytes, usable) |
 * | `redis`, `storage` (endtoend only) | Redis answers PING; every storage location answers `ping` |
 * | `disk_space_warning` (warning) | true while a volume has less than `DISKSPACE_HEALTH_WARNING_THRESHOLD` (10 %) free |
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../shared/config/index.ts';
import { getUserPasswordHash } from '../shared/db/namespaces.ts';
import type { Pool } from '../shared/db/pool.ts';
import {
  databaseCheck, diskSpaceCheck, redisCheck, runHealthChecks, storageCheck, type HealthCheck, type HealthChecks, type WorkerHealthDeps,
} from '../shared/runtime/health.ts';
import { ANONYMOUS } from './auth/access.ts';
import { signRegistryToken, verifyRegistryToken } from './auth/token.ts';

const ROUTES = [
  ['/health', 'instance'], ['/health/instance', 'instance'], ['/health/endtoend', 'endtoend'], ['/health/warning', 'warning'],
] as const;

/** Registers the health and internal ping routes; without checks in deps every service list is empty (200). */
export async function registerHealthRoutes(app: FastifyInstance): Promise<void> {
  for (const [path, kind] of ROUTES) {
    app.get(path, async (_request, reply) => {
      const checks = app.deps.health?.[kind] ?? {};
      const report = await runHealthChecks(checks, { warning: kind === 'warning' });
      return reply.status(report.status_code).send(report);
    });
  }
  // Quay's ping routes of its web and registry workers: they answer `true` while the server serves.
  for (const path of ['/_internal_ping', '/v1/_internal_ping']) {
    app.get(path, async (_request, reply) => reply.type('application/json').send('true'));
  }
}

/** What the front end's checks look at. */
export interface RegistryHealthDeps extends WorkerHealthDeps {
  readonly db: Pool;
  readonly config: Config;
  readonly tokenSecret: Uint8Array;
  /** Base URL of this process's own HTTP listener, e.g. `http://127.0.0.1:8080`. */
  readonly selfUrl: string;
  /** Free fraction below which `disk_space` fails (DISKSPACE_HEALTH_THRESHOLD). */
  readonly diskThreshold: number;
}

/** Quay's checks for the front end (see the module comment). */
export function registryHealthChecks(deps: RegistryHealthDeps): HealthChecks {
  const database = databaseCheck(deps.db);
  const auth: HealthCheck = async () => {
    // A name no account can have: the lookup runs in full and finds nothing.
    await getUserPasswordHash(deps.db, '(health check)');
    return true;
  };
  const timeoutMs = deps.config.quay.GUNICORN_HEALTH_CHECK_TIMEOUT * 1000;
  return {
    instance: {
      auth,
      database,
      disk_space: diskSpaceCheck(deps.diskPaths, deps.diskThreshold),
      registry_gunicorn: selfPingCheck(`${deps.selfUrl}/v1/_internal_ping`, timeoutMs),
      service_key: serviceKeyCheck(deps.tokenSecret, deps.config.quay.SERVER_HOSTNAME),
      web_gunicorn: selfPingCheck(`${deps.selfUrl}/_internal_ping`, timeoutMs),
    },
    endtoend: { auth, database, redis: redisCheck(deps.redis), storage: storageCheck(deps.storage) },
    warning: { disk_space_warning: diskSpaceCheck(deps.diskPaths, deps.diskWarningThreshold, { warning: true }) },
  };
}

/** True when `url` answers 200 within `timeoutMs` (Quay's `_check_gunicorn`). */
export function selfPingCheck(url: string, timeoutMs: number): HealthCheck {
  return async (signal) => {
    const response = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
    await response.body?.cancel();
    return response.status === 200;
  };
}

/** True when a token signed with `secret` for `audience` verifies (Quay: the instance service key is valid). */
export function serviceKeyCheck(secret: Uint8Array, audience: string): HealthCheck {
  return async () => {
    if (secret.length < 32) return false;
    const settings = { secret, audience, nowMs: Date.now() };
    const { token } = await signRegistryToken(settings, ANONYMOUS, []);
    return (await verifyRegistryToken(settings, token)).kind === 'anonymous';
  };
}
