/**
 * node deploy/validate.mjs is what keeps the deployment files in step with the code in CI (.ci/run
 * runs it on the files as shipped, where it must pass). Here it runs on a copy of deploy/ and
 * docker-compose.yml broken the ways a change to the fleet breaks them, and must name each break:
 * a worker type of workers/catalog.ts dropped from the kustomization, a compose service for a worker that does not
 * exist, a worker whose feature is off left unpaused (it would exit 0 and crash-loop), an overlay
 * object outside the namespace, an HPA that no longer matches its KEDA trigger, and a field of
 * the wrong type for its kind's schema.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/** Runs the validator on the deploy files under `dir`; its exit code and its whole output. */
async function validate(dir: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, 'deploy/validate.mjs'), '--deploy-root', dir], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

/** A copy of the project's deploy/ and docker-compose.yml. */
function copyDeploy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-deploy-'));
  fs.cpSync(path.join(ROOT, 'deploy'), path.join(dir, 'deploy'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'docker-compose.yml'), path.join(dir, 'docker-compose.yml'));
  return dir;
}

function edit(file: string, from: string | RegExp, to: string): void {
  const text = fs.readFileSync(file, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`${file}: ${String(from)} not found`);
  fs.writeFileSync(file, next);
}

describe('deploy/validate.mjs', { timeout: 180_000 }, () => {
  const dirs: string[] = [];
  beforeAll(() => {
    dirs.push(copyDeploy());
  });
  afterAll(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('names every way the files fall out of step with the fleet', async () => {
    const dir = dirs[0]!;
    // A worker type that exists in workers/catalog.ts but is not deployed.
    edit(path.join(dir, 'deploy/kubernetes/kustomization.yaml'), '  - workers/gcworker.yaml\n', '');
    // A compose service for a worker that does not exist.
    edit(path.join(dir, 'docker-compose.yml'), '  chunkcleanupworker:\n', '  ghostworker:\n    <<: *quayfleet\n    command: ["worker", "ghostworker"]\n\n  chunkcleanupworker:\n');
    // logrotateworker's feature is off in config.yaml: unpaused, it would crash-loop.
    edit(path.join(dir, 'deploy/kubernetes/workers/logrotateworker.yaml'), /^ {4}autoscaling\.keda\.sh\/paused-replicas: "0"\n/m, '');
    // An overlay object that misses the namespace.
    edit(path.join(dir, 'deploy/overlays/single-node/kustomization.yaml'), /^namespace: quayfleet\n/m, '');
    // An HPA whose target no longer equals its ScaledObject's threshold.
    edit(path.join(dir, 'deploy/overlays/hpa/hpa.yaml'), /(name: quayfleet-notificationworker\n[\s\S]*?averageValue: )"100"/, '$1"101"');

    // A field of the wrong type (KEDA's trigger metadata values are strings): the schema says so.
    edit(path.join(dir, 'deploy/kubernetes/workers/namespacegcworker.yaml'), 'threshold: "2"', 'threshold: 2');

    const { code, output } = await validate(dir);
    expect(code).toBe(1);
    expect(output).toContain('deploy/kubernetes: no Deployment quayfleet-gcworker (workers/catalog.ts has gcworker)');
    expect(output).toContain('docker-compose.yml: service ghostworker is no worker of workers/catalog.ts');
    expect(output).toContain('logrotateworker\'s feature is off in config.yaml, so it exits 0 and its Deployment would crash-loop');
    expect(output).toContain('deploy/overlays/single-node: PersistentVolumeClaim quayfleet-datastorage is in namespace (none)');
    expect(output).toContain('deploy/kubernetes: ScaledObject quayfleet-namespacegcworker: data/spec/triggers/0/metadata/threshold must be string');
    expect(output).toMatch(/deploy\/overlays\/hpa: HPA quayfleet-notificationworker differs from the base's ScaledObject: target 101 \(KEDA threshold 100\)/);
  });
});
