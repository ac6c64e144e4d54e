/**
 * Health checks in Quay's envelope: `{"data":{"services":{"database":true,...}},"status_code":200}`,
 * where `status_code` (and the HTTP status) is 200 when every service is healthy and 503
 * otherwise. Checks are injected functions (database, redis, storage, ...), each bounded by a
 * timeout so a hung dependency reports unhealthy instead of hanging the probe.
 *
 * `/health/warning` follows seed GAP-7: a warning check returns true when its warning condition
 * is active (`disk_space_warning: true`), and any active warning makes the status 503.
 */

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
