/**
 * Health checks in Quay's envelope: `{"data":{"services":{"database":true,...}},"status_code":200}`,
 * where `status_code` (and the HTTP status) is 200 when every service is healthy and 503
 * otherwise. Checks are injected functions (database, redis, storage, ...), each bounded by a
 * timeout so a hung dependency reports unhealthy instead of hanging the probe.
 *
 * Which keys a process answers: the front end Quay's own (registry/health.ts); every other process
 * `workerHealthChecks` below (HEALTH-5: database, redis, storage).
 *
 * `/health/warning` follows seed GAP-7: a warning check returns true when its warning condition
 * is active (`disk_space_warning: true`), and any active warning makes the status 503.
 */

import fs from 'node:fs/promises';
import os from 'node:os';
import { dirname } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from './logger.ts';
import { connectRedis, redact, type RedisSettings } from './redis.ts';

/** Resolves true when healthy (for warnings: when the warning is active). A throw counts as false. */
export type HealthCheck = (signal: AbortSignal) => Promise<boolean>;

/** The checks behind each endpoint, keyed by service name. */
export interface HealthChecks {
  /** This instance itself: `GET /health/instance` (alias `/health`). */
  readonly instance: Readonly<Record<string, HealthCheck>>;
  /** Every service the instance depends on: `GET /health/endtoend`. */
  readonly endtoend: Readonly<Record<string, HealthCheck>>;
  /** Warning conditions: `GET /health/warning`. */
  readonly warning: Readonly<Record<string, HealthCheck>>;
}

/** Quay's health envelope. */
export interface HealthReport {
  readonly data: { readonly services: Readonly<Record<string, boolean>> };
  readonly status_code: 200 | 503;
}

/** Default per-check timeout. */
export const HEALTH_TIMEOUT_MS = 5000;

async function runOne(check: HealthCheck, timeoutMs: number): Promise<boolean | undefined> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => { controller.abort(new Error(`health check timed out after ${timeoutMs} ms`)); resolve(undefined); }, timeoutMs);
  });
  try {
    return await Promise.race([check(controller.signal), timedOut]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `checks` concurrently. For ordinary checks a service is true when its check resolved true;
 * with `warning`, a service is true when its warning is active, and a failed check counts as active.
 */
export async function runHealthChecks(
  checks: Readonly<Record<string, HealthCheck>>, options: { timeoutMs?: number; warning?: boolean } = {},
): Promise<HealthReport> {
  const timeoutMs = options.timeoutMs ?? HEALTH_TIMEOUT_MS;
  const entries = await Promise.all(Object.entries(checks).map(async ([name, check]) => {
    const result = await runOne(check, timeoutMs);
    return [name, options.warning ? result !== false : result === true] as const;
  }));
  const services = Object.fromEntries(entries);
  const healthy = entries.every(([, value]) => (options.warning ? !value : value));
  return { data: { services }, status_code: healthy ? 200 : 503 };
}

/** A check that Postgres answers `SELECT 1`. */
export function databaseCheck(db: { query(sql: string): Promise<unknown> }): HealthCheck {
  return async () => {
    await db.query('SELECT 1');
    return true;
  };
}

/** A check that Redis answers PING. */
export function redisCheck(redis: { ping(): Promise<string> }): HealthCheck {
  return async () => (await redis.ping()) === 'PONG';
}

/**
 * The connection `redisCheck` pings with. Commands fail fast (one retry) so a probe reports an
 * outage instead of waiting it out, and its `error` events are logged, once per outage: an ioredis
 * client without an `error` listener prints every failed reconnect to stderr as an unhandled error
 * event, outside the JSON log. The caller disconnects it.
 */
export function redisPinger(settings: RedisSettings, log: Logger): Redis | Cluster {
  const client = connectRedis(settings, { maxRetriesPerRequest: 1 });
  let down = false;
  client.on('error', (error: Error) => {
    if (down) return;
    down = true;
    log.warn({ err: error, redis: redact(settings.url) }, 'Redis is unreachable; the redis health check fails until it answers again');
  });
  client.on('ready', () => {
    if (down) log.info({ redis: redact(settings.url) }, 'Redis answers again');
    down = false;
  });
  return client;
}

/** A check that every storage location answers `ping` (reachable, bucket or directory usable). */
export function storageCheck(storage: { readonly locations: readonly string[]; store(location: string): { ping(): Promise<void> } }): HealthCheck {
  return async () => {
    await Promise.all(storage.locations.map((location) => storage.store(location).ping()));
    return true;
  };
}

/**
 * The volumes a process writes to: its working directory and the temp directory (as Quay checks),
 * plus the directories of LocalStorage locations. Paths that do not exist are left out.
 */
export function diskPathsOf(storageConfig: Readonly<Record<string, readonly [string, Readonly<Record<string, unknown>>]>> | undefined): string[] {
  const local = Object.values(storageConfig ?? {})
    .filter(([driver, params]) => driver === 'LocalStorage' && typeof params.storage_path === 'string')
    .map(([, params]) => params.storage_path as string);
  return [process.cwd(), os.tmpdir(), ...local];
}

/** The fraction of `path`'s volume an unprivileged writer can still use (statfs bavail / blocks). */
export async function freeFraction(path: string): Promise<number> {
  const stats = await fs.statfs(path);
  return stats.blocks > 0 ? stats.bavail / stats.blocks : 0;
}

/**
 * Disk space on every path in `paths` (the nearest existing ancestor of each): true while each
 * keeps at least `minFreeFraction` free. With `warning`, the result is inverted to a warning
 * (true = the warning is active: less than `minFreeFraction` free somewhere), GAP-7's meaning.
 */
export function diskSpaceCheck(paths: readonly string[], minFreeFraction: number, options: { warning?: boolean } = {}): HealthCheck {
  return async () => {
    const fractions = await Promise.all(paths.map(async (path) => freeFraction(await existingAncestor(path))));
    const enough = fractions.every((fraction) => fraction >= minFreeFraction);
    return options.warning ? !enough : enough;
  };
}

async function existingAncestor(path: string): Promise<string> {
  let current = path;
  for (;;) {
    try {
      await fs.access(current);
      return current;
    } catch {
      const parent = dirname(current);
      if (parent === current) return current;
      current = parent;
    }
  }
}

/** What a worker process's checks look at. */
export interface WorkerHealthDeps {
  readonly db: { query(sql: string): Promise<unknown> };
  readonly redis: { ping(): Promise<string> };
  readonly storage: Parameters<typeof storageCheck>[0];
  /** Volumes for `disk_space_warning` (diskPathsOf). */
  readonly diskPaths: readonly string[];
  /** Free fraction below which `disk_space_warning` is raised (DISKSPACE_HEALTH_WARNING_THRESHOLD). */
  readonly diskWarningThreshold: number;
}

/**
 * The checks of a worker process (HEALTH-5): the services every worker depends on, `database`,
 * `redis` (its queue) and `storage`, on both /health/instance and /health/endtoend, and Quay's
 * `disk_space_warning`.
 */
export function workerHealthChecks(deps: WorkerHealthDeps): HealthChecks {
  const services = { database: databaseCheck(deps.db), redis: redisCheck(deps.redis), storage: storageCheck(deps.storage) };
  return {
    instance: services,
    endtoend: services,
    warning: { disk_space_warning: diskSpaceCheck(deps.diskPaths, deps.diskWarningThreshold, { warning: true }) },
  };
}
