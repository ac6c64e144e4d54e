/**
 * The CNCF distribution registry (Debian's /usr/bin/docker-registry) as a mirror upstream for
 * tests and benchmarks: a fixed loopback port, filesystem storage in a temp dir, deletes enabled,
 * optionally htpasswd Basic auth and TLS (a certificate from tls-certs.ts). Populated with skopeo
 * from an OCI layout. Stopped by its pid.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BINARY = '/usr/bin/docker-registry';

/** A bcrypt htpasswd line for user `mirror`, password `mirrorpass` (distribution accepts only bcrypt). */
export const HTPASSWD_USER = { username: 'mirror', password: 'mirrorpass', line: 'mirror:$2b$04$q05fd2JGCVgcX2moXynjUuJybd6M3.xDqufYVkRoIo52XcsKFKwYO' };

export interface DistributionOptions {
  /** Require HTPASSWD_USER's credentials. */
  readonly htpasswd?: boolean;
  /** Storage and config directory (kept at stop); default a fresh temp dir. Two servers may share one. */
  readonly dir?: string;
  /** Serve HTTPS with this certificate and key (PEM paths). */
  readonly tls?: { readonly certificate: string; readonly key: string };
  /** Called with each access-log line (Apache combined format, with the response size). */
  readonly onAccess?: (line: string) => void;
}

export interface Distribution {
  /** `127.0.0.1:<port>` */
  readonly authority: string;
  readonly dir: string;
  /**
   * Copies `oci:<layout>:<ref>` to `<repository>:<tag>` with skopeo (all platforms); `v2s2` converts
   * to Docker schema 2 on the way (an index becomes a Docker manifest list).
   */
  push(layoutDir: string, ref: string, repository: string, tag: string, options?: { format?: 'v2s2' }): Promise<void>;
  /** Deletes the manifest behind `repository:tag` (distribution deletes by digest: every tag on it goes). */
  deleteTag(repository: string, tag: string): Promise<void>;
  stop(): Promise<void>;
}

function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = (url.startsWith('https:') ? https : http).get(url, { rejectUnauthorized: false }, (response) => {
      response.resume();
      resolve(response.statusCode === 200 || response.statusCode === 401);
    });
    request.on('error', () => resolve(false));
  });
}

/** Starts distribution on `port`; with `htpasswd` it requires HTPASSWD_USER's credentials. */
export async function startDistribution(port: number, options: DistributionOptions = {}): Promise<Distribution> {
  await fs.access(BINARY).catch(() => {
    throw new Error(`${BINARY} is missing: apt-get install docker-registry`);
  });
  const dir = options.dir ?? await fs.mkdtemp(path.join(os.tmpdir(), 'quayfleet-upstream-'));
  const auth = options.htpasswd ? [`auth: {htpasswd: {realm: upstream, path: ${path.join(dir, 'htpasswd')}}}`] : [];
  if (options.htpasswd) await fs.writeFile(path.join(dir, 'htpasswd'), `${HTPASSWD_USER.line}\n`);
  const configFile = path.join(dir, `config-${port}.yml`);
  const tls = options.tls ? `, tls: {certificate: ${options.tls.certificate}, key: ${options.tls.key}}` : '';
  await fs.writeFile(configFile, [
    'version: 0.1',
    `log: {level: error, accesslog: {disabled: ${options.onAccess ? 'false' : 'true'}}}`,
    `storage: {filesystem: {rootdirectory: ${path.join(dir, 'data')}}, delete: {enabled: true}}`,
    `http: {addr: 127.0.0.1:${port}, secret: ${randomBytes(16).toString('hex')}${tls}}`,
    ...auth,
  ].join('\n'));
  const child = spawn(BINARY, ['serve', configFile], { stdio: ['ignore', options.onAccess ? 'pipe' : 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  if (options.onAccess) {
    const onAccess = options.onAccess;
    readline.createInterface({ input: child.stdout! }).on('line', onAccess);
  }
  const authority = `127.0.0.1:${port}`;
  const base = `${options.tls ? 'https' : 'http'}://${authority}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`distribution exited with ${child.exitCode}: ${stderr}`);
    if (await answers(`${base}/v2/`)) break;
    if (Date.now() > deadline) throw new Error(`distribution did not answer on ${authority}: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const creds = options.htpasswd ? ['--dest-creds', `${HTPASSWD_USER.username}:${HTPASSWD_USER.password}`] : [];
  const basic: Record<string, string> = options.htpasswd ? { authorization: `Basic ${Buffer.from(`${HTPASSWD_USER.username}:${HTPASSWD_USER.password}`).toString('base64')}` } : {};
  return {
    authority, dir,
    async push(layoutDir, ref, repository, tag, pushOptions = {}) {
      const format = pushOptions.format ? ['--format', pushOptions.format] : [];
      const args = ['copy', '--all', '--quiet', '--dest-tls-verify=false', ...format, ...creds, `oci:${layoutDir}:${ref}`, `docker://${authority}/${repository}:${tag}`];
      // distribution's filesystem driver answers 500 to a blob HEAD while a concurrent push of the
      // same blob is writing its link file (a CI run hit it pushing five tags that share layers).
      // The copy is idempotent, so it is retried; the third failure is the test's.
      for (let attempt = 1; ; attempt++) {
        try {
          await run('skopeo', args);
          return;
        } catch (error) {
          if (attempt === 3 || !/\b500\b/.test(String((error as { stderr?: string }).stderr ?? error))) throw error;
          await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
        }
      }
    },
    async deleteTag(repository, tag) {
      const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
      const head = await fetch(`http://${authority}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { accept, ...basic } });
      const digest = head.headers.get('docker-content-digest');
      if (!digest) throw new Error(`no digest for ${repository}:${tag} (${head.status})`);
      const deleted = await fetch(`http://${authority}/v2/${repository}/manifests/${digest}`, { method: 'DELETE', headers: basic });
      if (deleted.status !== 202) throw new Error(`delete of ${repository}@${digest} answered ${deleted.status}`);
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      if (!options.dir) await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
