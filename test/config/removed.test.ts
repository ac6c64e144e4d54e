/**
 * managementState Removed (OPS-1): OpenShift removes the registry instance, so its route answers
 * 503. A `quayfleet registry` pod under Removed serves no registry: every request on its HTTP port
 * (/v2, the token endpoint, the Quay API) answers 503 UNAVAILABLE with the ImageRegistryRemoved
 * text, nothing is written, while the metrics port exports the condition and stays live and ready.
 * A worker pod whose worker does not run under Removed parks (bin/parked.ts) instead of exiting
 * into a crash loop, and exits 0 once the mounted config leaves Removed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_REGISTRY_REMOVED_MESSAGE } from '../../shared/config/index.ts';
import { REDIS_URL } from '../helpers/redis.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startFleetProcess, type FleetProcess } from '../faults/fleet-process.ts';

/** This file's ports (branch f-config's range). */
const HTTP_PORT = 22640;
const METRICS_PORT = 22641;
const WORKER_METRICS_PORT = 22642;

let database: TestDatabase;
let fleet: FleetProcess | undefined;
beforeAll(async () => {
  database = await createTestDatabase('removed');
  fleet = await startFleetProcess({
    dbUri: database.url, redisUrl: REDIS_URL, httpPort: HTTP_PORT, metricsPort: METRICS_PORT, command: ['registry'],
    config: { spec: { managementState: 'Removed' } }, env: { LOG_LEVEL: 'info' },
  });
}, 240_000);
afterAll(async () => {
  await fleet?.stop();
  await database?.drop();
});

describe('a registry pod under managementState Removed', () => {
  it('answers every request 503 UNAVAILABLE with the ImageRegistryRemoved text, and writes nothing', async () => {
    const requests: [string, string, RequestInit?][] = [
      ['GET', '/v2/'],
      ['GET', '/v2/auth?service=quay&scope=repository:alice/app:pull,push'],
      ['POST', '/v2/alice/app/blobs/uploads/', { body: 'x', headers: { 'content-type': 'application/octet-stream' } }],
      ['PUT', '/v2/alice/app/manifests/latest', { body: '{}', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } }],
      ['GET', '/api/v1/discovery'],
      ['POST', '/api/v1/user/', { body: JSON.stringify({ username: 'alice', password: 'p', email: 'a@example.com' }), headers: { 'content-type': 'application/json' } }],
    ];
    for (const [method, path, init] of requests) {
      const response = await fetch(`${fleet!.base}${path}`, { method, ...init });
      expect(response.status, `${method} ${path}`).toBe(503);
      expect(await response.json()).toEqual({
        errors: [{ code: 'UNAVAILABLE', message: 'service unavailable', detail: { condition: 'ImageRegistryRemoved', reason: IMAGE_REGISTRY_REMOVED_MESSAGE } }],
      });
    }
    const users = await database.pool.query('SELECT count(*)::int AS n FROM namespace');
    expect(users.rows[0].n).toBe(0);
    expect(fleet!.output()).toContain('managementState is Removed: the registry answers 503 ImageRegistryRemoved');
  });

  it('exports the condition and the state, and stays live and ready on the metrics port', async () => {
    const metrics = await (await fetch(`${fleet!.metricsBase}/metrics`)).text();
    expect(metrics).toMatch(/^quayfleet_management_state\{[^}]*state="Removed"[^}]*\} 1$/m);
    expect(metrics).toMatch(/^quayfleet_management_state\{[^}]*state="Managed"[^}]*\} 0$/m);
    expect(metrics).toMatch(/^quayfleet_image_registry_condition\{[^}]*condition="ImageRegistryRemoved"[^}]*\} 1$/m);
    expect((await fetch(`${fleet!.metricsBase}/health/live`)).status).toBe(200);
    const instance = await fetch(`${fleet!.metricsBase}/health/instance`);
    expect(instance.status).toBe(200);
    expect(Object.keys((await instance.json() as { data: { services: object } }).data.services).sort()).toEqual(['database', 'redis', 'storage']);
  });
});

describe('a worker pod under managementState Removed', () => {
  it('parks (no crash loop): healthy with the reason, the condition exported; exits 0 when the state leaves Removed', async () => {
    const worker = await startFleetProcess({
      dbUri: database.url, redisUrl: REDIS_URL, httpPort: HTTP_PORT, metricsPort: WORKER_METRICS_PORT, command: ['worker', 'notificationworker'],
      config: { spec: { managementState: 'Removed' } }, env: { LOG_LEVEL: 'info', QUAYFLEET_DEGRADED_RECHECK_SECONDS: '1' },
    });
    try {
      const instance = await fetch(`${worker.metricsBase}/health/instance`);
      expect(instance.status).toBe(200);
      expect((await instance.json() as { data: { parked: string } }).data.parked).toMatch(/managementState is Removed/);
      expect((await fetch(`${worker.metricsBase}/health/live`)).status).toBe(200);
      const metrics = await (await fetch(`${worker.metricsBase}/metrics`)).text();
      expect(metrics).toMatch(/^quayfleet_image_registry_condition\{[^}]*condition="ImageRegistryRemoved"[^}]*\} 1$/m);
      // Well past several rechecks, still up.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect(worker.alive()).toBe(true);
      expect(worker.output()).toContain('worker parked');
      const configPath = path.join(worker.dataDir, 'config.yaml');
      const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
      fs.writeFileSync(configPath, JSON.stringify({ ...config, spec: { managementState: 'Managed' } }));
      const exit = await Promise.race([worker.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000))]);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(worker.output()).toContain('managementState is no longer Removed');
    } finally {
      await worker.stop();
    }
  }, 120_000);
});
