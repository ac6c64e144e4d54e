/**
 * The seed's refusal with a real client (QUOTA-8, ERR-1, ERR-19): skopeo pushes two images into
 * an organization, a Reject limit at 80 % is set with usage at 83 %, and the next push fails with
 * `denied: Quota has been exceeded on namespace`, every attempt refused the same way, while the
 * total the API reports is exactly the two images' blobs. Fails (never skips) without skopeo.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry as metrics } from '../../shared/metrics/index.ts';
import { OciLayout, type LayoutBlob } from '../fixtures/oci/layout.ts';
import type { TestRegistry } from '../helpers/registry.ts';
import { ADMIN, createOrg, orgReport, OWNER, setQuota, startQuotaRegistry } from './push-support.ts';

const run = promisify(execFile);
const LIMIT = 4 * 1024 * 1024;

let registry: TestRegistry;
let host: string;
let work: string;
const images: Record<string, { manifest: LayoutBlob; bytes: number }> = {};

/** Runs skopeo; resolves with stdout, or rejects with its stderr. */
async function skopeo(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { env: { ...process.env, REGISTRY_AUTH_FILE: path.join(work, 'auth.json') }, timeout: 120_000 });
    return stdout;
  } catch (error) {
    const failure = error as { code?: string; stderr?: string };
    if (failure.code === 'ENOENT') throw new Error('skopeo is not installed: apt-get install skopeo (this test needs a real OCI client)');
    throw new Error(failure.stderr ?? String(error));
  }
}

async function refusedAtUploadStart(): Promise<number> {
  const metric = (await metrics.getMetricsAsJSON()).find((m) => m.name === 'quayfleet_quota_pushes_rejected_total');
  return (metric?.values ?? []).filter((v) => v.labels.stage === 'upload_start').reduce((n, v) => n + v.value, 0);
}

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'quayfleet-quota-skopeo-'));
  await fs.writeFile(path.join(work, 'auth.json'), '{}');
  const layout = await OciLayout.create(path.join(work, 'source'));
  // Random content does not compress: the layers weigh what they hold. 83 % of LIMIT in two images.
  for (const [name, size] of [['ubuntu', 1_300_000], ['nginx', 2_180_000], ['next', 100_000]] as const) {
    const layer = await layout.writeLayer(`${name}.bin`, randomBytes(size));
    const manifest = await layout.writeImage([layer]);
    await layout.tag(manifest, name);
    const body = JSON.parse(await fs.readFile(path.join(work, 'source', 'blobs', 'sha256', manifest.digest.slice(7)), 'utf8')) as { config: { size: number } };
    images[name] = { manifest, bytes: layer.size + body.config.size };
  }
  registry = await startQuotaRegistry('quotaskopeo');
  await createOrg(registry, 'testorg');
  host = new URL(await registry.listen()).host;
});
afterAll(async () => {
  await registry?.close();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('skopeo against a namespace over its Reject limit', () => {
  const push = ['--dest-creds', OWNER.join(':'), '--dest-tls-verify=false'];
  const source = (ref: string) => `oci:${path.join(work, 'source')}:${ref}`;

  it('is refused with "denied: Quota has been exceeded on namespace" on every attempt', async () => {
    const quotaId = await setQuota(registry, 'testorg', LIMIT);
    await skopeo('copy', ...push, source('ubuntu'), `docker://${host}/testorg/ubuntu:latest`);
    await skopeo('copy', ...push, source('nginx'), `docker://${host}/testorg/nginx:latest`);
    const used = images.ubuntu!.bytes + images.nginx!.bytes;
    expect((await orgReport(registry, 'testorg')).quota_bytes).toBe(used);
    expect(used / LIMIT).toBeGreaterThan(0.8);
    const limit = await registry.api('POST', `/organization/testorg/quota/${quotaId}/limit`, { as: ADMIN, body: { type: 'Reject', threshold_percent: 80 } });
    expect(limit.statusCode).toBe(201);

    const before = await refusedAtUploadStart();
    const failure = await skopeo('copy', '--retry-times', '3', ...push, source('next'), `docker://${host}/testorg/ubuntu:next`).then(() => undefined, (e: Error) => e.message);
    expect(failure).toContain('denied: Quota has been exceeded on namespace');
    const attempts = (await refusedAtUploadStart()) - before;
    expect(attempts).toBeGreaterThanOrEqual(1);
    // skopeo does not retry a DENIED; podman's 3 retries (ERR-19) are three more runs here, each refused alike.
    for (let retry = 1; retry <= 3; retry++) {
      const again = await skopeo('copy', ...push, source('next'), `docker://${host}/testorg/ubuntu:next`).then(() => undefined, (e: Error) => e.message);
      expect(again).toContain('denied: Quota has been exceeded on namespace');
      expect((await refusedAtUploadStart()) - before).toBe(attempts * (retry + 1));
    }
    expect((await orgReport(registry, 'testorg')).quota_bytes).toBe(used);
  }, 180_000);
});
