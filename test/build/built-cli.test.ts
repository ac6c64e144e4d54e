/**
 * deploy/Dockerfile's steps, performed without a Docker daemon (none runs here), in a temporary
 * directory and read from the Dockerfile itself:
 * - build stage: exactly the files its COPY instructions name, then `npm run build`. The
 *   dependencies come from the project's node_modules (a symlink) instead of `RUN npm install`,
 *   which would need the network: what is proven is that the copied files are enough to build;
 * - final stage: its COPY instructions (package.json, the build stage's dist/, bin/quayfleet.js)
 *   and, for `RUN npm install --omit=dev`, hard links of exactly the packages package-lock.json
 *   does not mark `dev` (what that command installs), so no dev dependency (tsx, vitest) is there
 *   to be loaded by accident;
 * - run as the image's USER (uid/gid from its ARG, 10001): `migrate` (the init container), then
 *   `worker gcworker`, which must answer /health/instance with its database and Redis up.
 * Not covered: the base image (node:20-bookworm-slim), apt-get, useradd, and the image's
 * filesystem permissions (here the files belong to root and are world-readable).
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { REDIS_URL } from '../helpers/redis.ts';

const root = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const METRICS_PORT = 22501;
const HTTP_PORT = 22502;

interface Copy { readonly from?: string; readonly sources: string[]; readonly dest: string }
interface Stage { readonly name?: string; workdir: string; readonly copies: Copy[]; readonly runs: string[]; user?: string }

/** The stages of a Dockerfile: WORKDIR, COPY (with --from), RUN and USER, ARG defaults substituted. */
function parseDockerfile(text: string): Stage[] {
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const [instruction, ...rest] = line.split(/\s+/);
    const value = rest.join(' ').replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? '');
    const stage = stages.at(-1);
    switch (instruction!.toUpperCase()) {
      case 'FROM': stages.push({ name: /\bAS\s+(\S+)/i.exec(value)?.[1], workdir: '/', copies: [], runs: [] }); break;
      case 'ARG': { const [name, def] = value.split('='); if (def !== undefined) args.set(name!, def); break; }
      case 'WORKDIR': stage!.workdir = path.posix.resolve(stage!.workdir, value); break;
      case 'RUN': stage!.runs.push(value); break;
      case 'USER': stage!.user = value; break;
      case 'COPY': {
        const words = value.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        stage!.copies.push({ from, sources: paths.slice(0, -1), dest: paths.at(-1)! });
        break;
      }
      default:
    }
  }
  return stages;
}

/** COPY `sources` (relative to `context`) to `dest` (relative to `workdir`, itself under `fsRoot`). */
function copyInto(fsRoot: string, workdir: string, context: string, copy: Copy): void {
  const dest = path.join(fsRoot, path.posix.resolve(workdir, copy.dest));
  const intoDir = copy.dest.endsWith('/') || copy.sources.length > 1;
  for (const source of copy.sources) {
    const from = path.join(context, source);
    const to = intoDir ? path.join(dest, path.basename(source)) : dest;
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.cpSync(from, to, { recursive: true });
  }
}

/** Every JavaScript file under `dir`. */
function jsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return jsFiles(full);
    return entry.name.endsWith('.js') ? [full] : [];
  });
}

/** The package a bare specifier names: `@scope/name` or `name`. */
const packageOf = (specifier: string): string => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

describe('the Dockerfile\'s steps', { timeout: 600_000 }, () => {
  let tmp: string;
  let app: string;
  let uid: number;
  let database: TestDatabase;
  const stages = parseDockerfile(fs.readFileSync(path.join(root, 'deploy/Dockerfile'), 'utf8'));
  const build = stages[0]!;
  const final = stages.at(-1)!;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-image-'));
    fs.chmodSync(tmp, 0o755);
    // Build stage: its COPYs into <tmp>/build<WORKDIR>, dependencies linked, then its RUN npm run build.
    const buildRoot = path.join(tmp, 'build');
    for (const copy of build.copies) copyInto(buildRoot, build.workdir, root, copy);
    const src = path.join(buildRoot, build.workdir);
    expect(build.runs[0]).toMatch(/^npm install\b/);
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(src, 'node_modules'));
    expect(build.runs.slice(1)).toEqual(['npm run build']);
    await run('npm', ['run', 'build'], { cwd: src, maxBuffer: 16 * 1024 * 1024 });

    // Final stage: COPY --from=build reads the build stage's filesystem, the others the context.
    const finalRoot = path.join(tmp, 'final');
    for (const copy of final.copies) {
      copyInto(finalRoot, final.workdir, copy.from === build.name ? buildRoot : root, copy.from === build.name
        ? { ...copy, sources: copy.sources.map((s) => s.replace(/^\//, '')) } : copy);
    }
    app = path.join(finalRoot, final.workdir);
    expect(final.runs.some((r) => /^npm install --omit=dev\b/.test(r))).toBe(true);
    // `npm install --omit=dev`: every package the lockfile does not mark dev, hard-linked.
    const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const linked: string[] = [];
    for (const key of Object.keys(lock.packages).filter((k) => k.startsWith('node_modules/') && !lock.packages[k]!.dev).sort()) {
      if (linked.some((parent) => key.startsWith(`${parent}/`)) || !fs.existsSync(path.join(root, key))) continue;
      fs.mkdirSync(path.dirname(path.join(app, key)), { recursive: true });
      await run('cp', ['-al', path.join(root, key), path.join(app, key)]);
      linked.push(key);
    }
    uid = Number(/^(\d+):\d+$/.exec(final.user ?? '')?.[1]);
    for (const dir of ['home', 'data', 'storage']) {
      fs.mkdirSync(path.join(tmp, dir));
      fs.chownSync(path.join(tmp, dir), uid, uid);
    }
    database = await createTestDatabase('build');
  }, 600_000);

  afterAll(async () => {
    await database?.drop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('holds dist/, the entry point and production dependencies only; dist/ imports nothing else', () => {
    expect(fs.readdirSync(app).sort()).toEqual(['bin', 'dist', 'node_modules', 'package-lock.json', 'package.json']);
    expect(fs.readdirSync(path.join(app, 'bin'))).toEqual(['quayfleet.js']);
    // typescript stays: the lockfile marks it devOptional (an optional peer of valibot, a
    // production dependency's dependency), which `npm install --omit=dev` keeps. It is never loaded.
    for (const dev of ['tsx', 'vitest', 'eslint', 'azurite', 'firebase-tools']) expect(fs.existsSync(path.join(app, 'node_modules', dev)), dev).toBe(false);
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const builtins = new Set(builtinModules);
    const wrong: string[] = [];
    for (const file of jsFiles(path.join(app, 'dist'))) {
      const text = fs.readFileSync(file, 'utf8');
      // Static import/export ... from, side-effect imports, and dynamic import() of a literal.
      const specifiers = /^\s*(?:(?:import|export)\b[^;'"]*?\bfrom\s*|import\s*)['"]([^'"\n]+)['"]|\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/gm;
      for (const match of text.matchAll(specifiers)) {
        const specifier = (match[1] ?? match[2])!;
        if (specifier.startsWith('.')) {
          // Relative imports point at compiled files that exist (tsc rewrote `.ts` to `.js`).
          if (!fs.existsSync(path.resolve(path.dirname(file), specifier))) wrong.push(`${path.relative(app, file)}: ${specifier} (missing)`);
          continue;
        }
        if (specifier.startsWith('node:') || builtins.has(specifier)) continue;
        if (!Object.hasOwn(pkg.dependencies, packageOf(specifier))) wrong.push(`${path.relative(app, file)}: ${specifier} (not a production dependency)`);
      }
    }
    expect(wrong).toEqual([]);
    // scripts/build.js puts them beside the chunk holding shared/db/migrate.ts, which reads ./migrations.
    expect(fs.readdirSync(path.join(app, 'dist/chunks/migrations')).filter((f) => f.endsWith('.sql')).length).toBeGreaterThan(0);
  });

  it('runs migrate, then a worker answering /health, as the image\'s non-root user', async () => {
    expect(uid).toBe(10001);
    const env = {
      PATH: process.env.PATH!, HOME: path.join(tmp, 'home'), NODE_ENV: 'production', LOG_LEVEL: 'warn', DB_URI: database.url, REDIS_URL,
      QUAYFLEET_CONFIG: path.join(tmp, 'config.yaml'), QUAYFLEET_DATA_DIR: path.join(tmp, 'data'),
      QUAYFLEET_METRICS_PORT: String(METRICS_PORT), QUAYFLEET_HTTP_PORT: String(HTTP_PORT),
    };
    fs.writeFileSync(env.QUAYFLEET_CONFIG, `DISTRIBUTED_STORAGE_CONFIG:\n  default: [LocalStorage, {storage_path: ${path.join(tmp, 'storage')}}]\nDISTRIBUTED_STORAGE_PREFERENCE: [default]\n`);
    const as = { cwd: app, env, uid, gid: uid };
    expect((await run(process.execPath, ['bin/quayfleet.js', '--version'], as)).stdout).toMatch(/\(dist\)/);
    await run(process.execPath, ['bin/quayfleet.js', 'migrate'], as);

    const child = spawn(process.execPath, ['bin/quayfleet.js', 'worker', 'gcworker'], { ...as, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const started = Date.now();
    try {
      let status = 0;
      while (status !== 200) {
        if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}: ${stderr}`);
        if (Date.now() - started > 120_000) throw new Error(`worker not healthy after 120 s: ${stderr}`);
        status = await fetch(`http://127.0.0.1:${METRICS_PORT}/health/instance`).then((r) => r.status, () => 0);
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const body = await (await fetch(`http://127.0.0.1:${METRICS_PORT}/health/instance`)).json() as { data: { services: Record<string, boolean> } };
      expect(body.data.services).toMatchObject({ database: true, redis: true });
      expect(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${uid}\\s`, 'm'));
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(/tsx|\.ts:/);
  });
});
