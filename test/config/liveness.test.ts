/**
 * Liveness versus readiness for a pod that waits for a valid config (OPS-4): the degraded process
 * answers `/health/live` 200 (Kubernetes keeps it) and `/health/instance` 503 with Quay's errors
 * (it reports why), and every Deployment's startup and liveness probes ask `/health/live`, while
 * readiness keeps asking the dependency checks. A probe that restarts a degraded pod every two
 * minutes would only hide its report.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDegraded, type Degraded } from '../../bin/degraded.ts';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { LIVENESS_PATH } from '../../shared/runtime/metrics-server.ts';

const root = path.resolve(import.meta.dirname, '../..');

describe('a degraded process', () => {
  let degraded: Degraded;
  const lines: { level: number; msg: string; fieldGroup?: string }[] = [];
  beforeAll(async () => {
    const log = pino({ level: 'info' }, new Writable({ write(chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done(); } }));
    degraded = await runDegraded({
      processName: 'gcworker', metricsPort: 0, log,
      errors: [{ FieldGroup: 'Database', Tags: ['DB_URI'], Message: 'DB_URI is required.' }],
      warnings: [{ FieldGroup: 'DistributedStorage', Tags: ['spec.storage.emptyDir'], Message: 'spec.storage.emptyDir is for non-production use only' }],
      onValid: () => undefined,
    });
  });
  afterAll(async () => { await degraded.stop(); });

  it('logs its errors at level error and each warning apart at level warn', () => {
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual([expect.stringMatching(/^configuration incomplete: DB_URI is required\.; running degraded/)]);
    expect(lines.filter((l) => l.level === 40)).toEqual([expect.objectContaining({ fieldGroup: 'DistributedStorage', msg: 'configuration warning: spec.storage.emptyDir is for non-production use only' })]);
  });

  it('is live (200 on /health/live) but not healthy (503 on /health/instance and /health/endtoend), with its errors and, apart, its warnings', async () => {
    const base = `http://127.0.0.1:${degraded.metrics.port}`;
    const live = await fetch(`${base}${LIVENESS_PATH}`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({
      data: {
        services: {},
        config_errors: [{ FieldGroup: 'Database', Tags: ['DB_URI'], Message: 'DB_URI is required.' }],
        config_warnings: [{ FieldGroup: 'DistributedStorage', Tags: ['spec.storage.emptyDir'], Message: 'spec.storage.emptyDir is for non-production use only' }],
      },
      status_code: 200,
    });
    for (const readiness of ['/health/instance', '/health/endtoend']) {
      const response = await fetch(`${base}${readiness}`);
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ data: { services: { config: false } }, status_code: 503 });
    }
  });
});

interface Probe { httpGet?: { path?: string; port?: string | number } }
interface Container { name: string; startupProbe?: Probe; livenessProbe?: Probe; readinessProbe?: Probe }

/** Every container of every Deployment under deploy/kubernetes. */
function deployedContainers(): { file: string; container: Container }[] {
  const found: { file: string; container: Container }[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.ya?ml$/.test(entry.name)) {
        for (const doc of parseAllDocuments(fs.readFileSync(full, 'utf8'))) {
          const resource = doc.toJS() as { kind?: string; spec?: { template?: { spec?: { containers?: Container[] } } } } | null;
          if (resource?.kind !== 'Deployment') continue;
          for (const container of resource.spec?.template?.spec?.containers ?? []) found.push({ file: path.relative(root, full), container });
        }
      }
    }
  };
  walk(path.join(root, 'deploy/kubernetes'));
  return found;
}

describe('the deploy manifests', () => {
  it('point every startup and liveness probe at /health/live on the metrics port; readiness stays on the dependency checks', () => {
    const containers = deployedContainers();
    expect(containers.length).toBeGreaterThanOrEqual(12);
    for (const { file, container } of containers) {
      const where = `${file} ${container.name}`;
      expect(container.livenessProbe?.httpGet, where).toEqual({ path: LIVENESS_PATH, port: 'metrics' });
      expect(container.startupProbe?.httpGet, where).toEqual({ path: LIVENESS_PATH, port: 'metrics' });
      expect(container.readinessProbe?.httpGet?.path, where).toMatch(/^\/health\/(endtoend|instance)$/);
    }
  });
});
