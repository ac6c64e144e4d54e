/**
 * End to end with a real OCI client: skopeo pushes OCI layouts built here to a front end listening
 * on a real port, lists tags, inspects, copies between repositories (a cross-repository mount),
 * pulls back byte-identical, and deletes by tag and by digest. Fails (never skips) without skopeo.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry as metricsRegistry } from '../../shared/metrics/index.ts';
import { OciLayout, readLayoutBlob, type LayoutBlob } from '../fixtures/oci/layout.ts';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.ts';

const run = promisify(execFile);
const CREDS = 'alice:password1';

let registry: TestRegistry;
let host: string;
let work: string;
let imageA: LayoutBlob;
let imageB: LayoutBlob;
let index: LayoutBlob;

/** Runs skopeo with the test's own auth file and no signature policy; returns stdout. */
async function skopeo(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('skopeo', ['--insecure-policy', ...args], {
      env: { ...process.env, REGISTRY_AUTH_FILE: path.join(work, 'auth.json') }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const failure = error as { code?: string; stderr?: string };
    if (failure.code === 'ENOENT') throw new Error('skopeo is not installed: apt-get install skopeo (the e2e test needs a real OCI client)');
    throw new Error(`skopeo ${args.join(' ')} failed: ${failure.stderr ?? String(error)}`);
  }
}

async function pushedBytes(): Promise<number> {
  const metric = (await metricsRegistry.getMetricsAsJSON()).find((m) => m.name === 'quay_registry_image_pushed_bytes_total');
  return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'quayfleet-e2e-'));
  await fs.writeFile(path.join(work, 'auth.json'), '{}');
  const layout = await OciLayout.create(path.join(work, 'source'));
  const shared = await layout.writeLayer('shared.txt', randomBytes(200_000));
  imageA = await layout.writeImage([shared, await layout.writeLayer('a.txt', randomBytes(50_000))], 'amd64');
  imageB = await layout.writeImage([shared, await layout.writeLayer('b.txt', randomBytes(70_000))], 'arm64');
  index = await layout.writeIndex([{ manifest: imageA, architecture: 'amd64' }, { manifest: imageB, architecture: 'arm64' }]);
  await layout.tag(imageA, 'a');
  await layout.tag(imageB, 'b');
  await layout.tag(index, 'multi');

  registry = await startTestRegistry({ label: 'e2eskopeo' });
  await registry.createUser('alice', 'password1');
  host = new URL(await registry.listen()).host;
});
afterAll(async () => {
  await registry?.close();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('skopeo against quayfleet', () => {
  const source = (ref: string) => `oci:${path.join(work, 'source')}:${ref}`;
  const remote = (name: string) => `docker://${host}/${name}`;
  const push = ['--dest-creds', CREDS, '--dest-tls-verify=false'];
  const pull = ['--src-creds', CREDS, '--src-tls-verify=false'];
  const read = ['--creds', CREDS, '--tls-verify=false'];

  it('pushes two images sharing a layer and a two-platform index', async () => {
    await skopeo('copy', ...push, source('a'), remote('alice/app:a'));
    await skopeo('copy', ...push, source('b'), remote('alice/app:b'));
    await skopeo('copy', '--all', ...push, source('multi'), remote('alice/app:multi'));
    const tags = JSON.parse(await skopeo('list-tags', ...read, remote('alice/app'))) as { Repository: string; Tags: string[] };
    expect(tags.Tags.sort()).toEqual(['a', 'b', 'multi']);
  });

  it('inspects manifests and configs as stored', async () => {
    const raw = await skopeo('inspect', '--raw', ...read, remote('alice/app:a'));
    expect(Buffer.from(raw).equals(await readLayoutBlob(path.join(work, 'source'), imageA.digest))).toBe(true);
    const inspected = JSON.parse(await skopeo('inspect', ...read, remote('alice/app:b'))) as { Digest: string; Architecture: string; Layers: string[] };
    expect(inspected.Digest).toBe(imageB.digest);
    expect(inspected.Architecture).toBe('arm64');
    expect(inspected.Layers.length).toBe(2);
    const rawIndex = await skopeo('inspect', '--raw', ...read, remote('alice/app:multi'));
    expect(JSON.parse(rawIndex).manifests.map((m: { digest: string }) => m.digest)).toEqual([imageA.digest, imageB.digest]);
  });

  it('copies between repositories by mounting the layers instead of re-sending them', async () => {
    const manifest = JSON.parse((await readLayoutBlob(path.join(work, 'source'), imageA.digest)).toString()) as { config: { size: number } };
    const before = await pushedBytes();
    await skopeo('copy', ...pull, ...push, remote('alice/app:a'), remote('alice/copy:a'));
    // skopeo always uploads the config (it never tries to reuse it); the layers are mounted.
    expect(await pushedBytes()).toBe(before + manifest.config.size);
    const raw = await skopeo('inspect', '--raw', ...read, remote('alice/copy:a'));
    expect(Buffer.from(raw).equals(await readLayoutBlob(path.join(work, 'source'), imageA.digest))).toBe(true);
  });

  it('pulls back byte-identical images and indexes', async () => {
    const out = path.join(work, 'pulled');
    await skopeo('copy', ...pull, remote('alice/app:a'), `oci:${out}:a`);
    await skopeo('copy', '--all', ...pull, remote('alice/app:multi'), `oci:${out}:multi`);
    const pulled = await fs.readdir(path.join(out, 'blobs', 'sha256'));
    expect(pulled.length).toBeGreaterThanOrEqual(8);
    for (const file of pulled) {
      const original = await fs.readFile(path.join(work, 'source', 'blobs', 'sha256', file));
      expect(original.equals(await fs.readFile(path.join(out, 'blobs', 'sha256', file)))).toBe(true);
    }
  });

  it('deletes by tag and by digest', async () => {
    // skopeo resolves a tag to its digest and deletes the manifest: every tag on it ends.
    await skopeo('delete', ...read, remote('alice/app:b'));
    let tags = JSON.parse(await skopeo('list-tags', ...read, remote('alice/app'))) as { Tags: string[] };
    expect(tags.Tags.sort()).toEqual(['a', 'multi']);
    await skopeo('delete', ...read, `${remote('alice/app')}@${index.digest}`);
    tags = JSON.parse(await skopeo('list-tags', ...read, remote('alice/app'))) as { Tags: string[] };
    expect(tags.Tags).toEqual(['a']);
    await expect(skopeo('inspect', ...read, remote('alice/app:multi'))).rejects.toThrow(/manifest unknown|not found/i);
  });
});
