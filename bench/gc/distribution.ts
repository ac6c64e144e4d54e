/**
 * The peer: CNCF distribution's offline `registry garbage-collect --delete-untagged` (Debian
 * package docker-registry) over the same model written in distribution's filesystem layout:
 * blobs at docker/registry/v2/blobs/sha256/<2>/<hex>/data (manifests are blobs too), and per
 * repository _layers/sha256/<hex>/link, _manifests/revisions/sha256/<hex>/link and, for tagged
 * manifests, _manifests/tags/<tag>/{current,index/sha256/<hex>}/link.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { mapBounded } from '../../shared/storage/concurrency.ts';
import type { RegistryModel } from '../../test/gc/bulk.ts';

/** The binary Debian installs for docker-registry. */
export const DISTRIBUTION_BINARY = process.env.DISTRIBUTION_BINARY ?? 'docker-registry';

function hexOf(digest: string): string {
  return digest.slice('sha256:'.length);
}

/** Writes `model` under `root` in distribution's layout; returns the config file path. */
export async function writeDistributionLayout(model: RegistryModel, root: string): Promise<string> {
  const v2 = path.join(root, 'docker', 'registry', 'v2');
  const files: { file: string; data: Buffer | string }[] = [];
  const blob = (digest: string, data: Buffer) => files.push({ file: path.join(v2, 'blobs', 'sha256', hexOf(digest).slice(0, 2), hexOf(digest), 'data'), data });
  model.repositories.forEach((repo) => {
    const base = path.join(v2, 'repositories', repo.namespace, repo.name);
    repo.manifests.forEach((m, i) => {
      blob(m.digest, m.bytes);
      files.push({ file: path.join(base, '_manifests', 'revisions', 'sha256', hexOf(m.digest), 'link'), data: m.digest });
      for (const b of m.blobs) {
        blob(b.digest, b.bytes);
        files.push({ file: path.join(base, '_layers', 'sha256', hexOf(b.digest), 'link'), data: b.digest });
      }
      if (m.garbage) return; // untagged: what --delete-untagged removes
      const tag = path.join(base, '_manifests', 'tags', `t${i}`);
      files.push({ file: path.join(tag, 'current', 'link'), data: m.digest });
      files.push({ file: path.join(tag, 'index', 'sha256', hexOf(m.digest), 'link'), data: m.digest });
    });
  });
  // Every repository has a tags directory, even when all its manifests are untagged (distribution
  // fails to mark a repository without one).
  await Promise.all(model.repositories.map((repo) => fs.mkdir(path.join(v2, 'repositories', repo.namespace, repo.name, '_manifests', 'tags'), { recursive: true })));
  await mapBounded(files, 64, async ({ file, data }) => {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, data);
  });
  const config = path.join(root, 'config.yml');
  await fs.writeFile(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n`);
  return config;
}

/** Runs the offline GC; resolves with its wall time and the blobs it reported deleting. */
export async function runDistributionGc(config: string): Promise<{ seconds: number; blobsDeleted: number; manifestsDeleted: number }> {
  const started = performance.now();
  let blobsDeleted = 0;
  let manifestsDeleted = 0;
  let tail = '';
  const other: string[] = []; // lines that are neither marks nor deletions: errors, the summary
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(DISTRIBUTION_BINARY, ['garbage-collect', '--delete-untagged', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const count = (text: string) => {
      const lines = (tail + text).split('\n');
      tail = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('blob eligible for deletion')) blobsDeleted++;
        else if (line.includes('manifest eligible for deletion')) manifestsDeleted++;
        else if (!line.includes(': marking ') && line.trim()) other.splice(0, other.length - 19, line);
      }
    };
    child.stdout.setEncoding('utf8').on('data', count);
    child.stderr.setEncoding('utf8').on('data', count);
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0) throw new Error(`${DISTRIBUTION_BINARY} garbage-collect exited with ${code}:\n${other.join('\n')}`);
  return { seconds: (performance.now() - started) / 1000, blobsDeleted, manifestsDeleted };
}

/** Number of `data` files under distribution's blob store (what is left after its GC). */
export async function countDistributionBlobs(root: string): Promise<number> {
  let n = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await walk(path.join(dir, entry.name));
      else if (entry.name === 'data') n++;
    }
  };
  await walk(path.join(root, 'docker', 'registry', 'v2', 'blobs'));
  return n;
}
