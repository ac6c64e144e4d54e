/**
 * The small HTTP server every process runs on the metrics port (9091, as Quay): `/metrics` in
 * Prometheus text from prom-client's default registry, and `/health/instance` (alias `/health`),
 * `/health/endtoend`, `/health/warning` in Quay's envelope. Plain node:http: five GET routes do
 * not need a framework, and the front end's own server stays separate.
 *
 * `/health/live` is the liveness probe's path: 200 whenever the event loop answers, whatever the
 * dependencies or the configuration say. A pod that is up but cannot work (a database outage, an
 * incomplete config waiting to be fixed) is kept alive and reports why on `/health/instance`;
 * restarting it would only hide the report. A process whose event loop is stuck answers nothing,
 * so the probe times out and Kubernetes restarts it, which is what liveness is for.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { runHealthChecks, type HealthChecks } from './health.ts';
import type { Logger } from './logger.ts';
import { registry } from '../metrics/index.ts';

/** Options of the metrics server. */
export interface MetricsServerOptions {
  /** Port to listen on; 9091 by default, 0 for any free port (tests). */
  readonly port?: number;
  readonly host?: string;
  readonly health?: Partial<HealthChecks>;
  /** Timeout of each health check. */
  readonly healthTimeoutMs?: number;
  /** Extra keys beside `services` in every health answer (a degraded process lists its config errors there). */
  readonly healthData?: () => Record<string, unknown>;
  readonly log?: Logger;
}

/** A listening metrics server. */
export interface MetricsServer {
  /** The port actually bound. */
  readonly port: number;
  /** Stops accepting connections and closes idle ones. Safe to call twice. */
  close(): Promise<void>;
}

/** The liveness probe's path: 200 while the process answers (see the header). */
export const LIVENESS_PATH = '/health/live';

/** Quay's default metrics port. */
export const DEFAULT_METRICS_PORT = 9091;

function send(res: http.ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(body);
}

async function route(options: MetricsServerOptions, path: string, res: http.ServerResponse): Promise<void> {
  const health = options.health ?? {};
  const healthRoutes: Record<string, [keyof HealthChecks, boolean]> = {
    '/health': ['instance', false],
    '/health/instance': ['instance', false],
    '/health/endtoend': ['endtoend', false],
    '/health/warning': ['warning', true],
  };
  if (path === LIVENESS_PATH) {
    const report = { data: { services: {} }, status_code: 200 };
    const body = options.healthData ? { ...report, data: { ...report.data, ...options.healthData() } } : report;
    send(res, 200, 'application/json', JSON.stringify(body));
    return;
  }
  if (path === '/metrics') {
    send(res, 200, registry.contentType, await registry.metrics());
    return;
  }
  const healthRoute = healthRoutes[path];
  if (healthRoute) {
    const [kind, warning] = healthRoute;
    const report = await runHealthChecks(health[kind] ?? {}, { timeoutMs: options.healthTimeoutMs, warning });
    const body = options.healthData ? { ...report, data: { ...report.data, ...options.healthData() } } : report;
    send(res, report.status_code, 'application/json', JSON.stringify(body));
    return;
  }
  send(res, 404, 'application/json', JSON.stringify({ error: 'not found' }));
}

/** Starts the server; resolves once it listens. */
export async function startMetricsServer(options: MetricsServerOptions = {}): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'application/json', JSON.stringify({ error: 'method not allowed' }));
      return;
    }
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '') || '/';
    route(options, path, res).catch((error: unknown) => {
      options.log?.error({ err: error, path }, 'metrics server request failed');
      if (!res.headersSent) send(res, 500, 'application/json', JSON.stringify({ error: 'internal error' }));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_METRICS_PORT, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  options.log?.info({ port }, 'metrics and health server listening');
  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
