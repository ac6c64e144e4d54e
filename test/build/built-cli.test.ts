/**
 * The compiled build as the image holds it: `npm run build` output (dist/) with bin/quayfleet.js and
 * package.json, no TypeScript source, no tsx. It must import nothing but production dependencies
 * (the image installs no others), and `quayfleet worker gcworker` from it must answer /health.
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
const METRICS_PORT = 21701;
const HTTP_PORT = 21702;

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

describe('the compiled build', { timeout: 300_000 }, () => {
  let image: string;
  let database: TestDatabase;

  beforeAll(async () => {
    // CI builds before the tests (.ci/run); build here only when dist/ is missing or stale.
    const { stdout } = await run(process.execPath, ['bin/quayfleet.js', '--version'], { cwd: root, env: { ...process.env, QUAYFLEET_FROM_SOURCE: '' } });
    if (!stdout.includes('(dist)')) await run('npm', ['run', 'build'], { cwd: root });
    // The image's /app: dist/, the entry point, package.json and the dependencies; nothing else.
    image = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-image-'));
    fs.cpSync(path.join(root, 'dist'), path.join(image, 'dist'), { recursive: true });
    fs.mkdirSync(path.join(image, 'bin'));
    fs.copyFileSync(path.join(root, 'bin/quayfleet.js'), path.join(image, 'bin/quayfleet.js'));
    fs.copyFileSync(path.join(root, 'package.json'), path.join(image, 'package.json'));
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(image, 'node_modules'));
    database = await createTestDatabase('build');
  });

  afterAll(async () => {
    await database?.drop();
    if (image) fs.rmSync(image, { recursive: true, force: true });
  });

  it('imports only Node built-ins and production dependencies', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const builtins = new Set(builtinModules);
    const wrong: string[] = [];
    for (const file of jsFiles(path.join(image, 'dist'))) {
      const text = fs.readFileSync(file, 'utf8');
      // Static import/export ... from, side-effect imports, and dynamic import() of a literal.
      const specifiers = /^\s*(?:(?:import|export)\b[^;'"]*?\bfrom\s*|import\s*)['"]([^'"\n]+)['"]|\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/gm;
      for (const match of text.matchAll(specifiers)) {
        const specifier = (match[1] ?? match[2])!;
        if (specifier.startsWith('.')) {
          // Relative imports point at compiled files that exist (tsc rewrote `.ts` to `.js`).
          if (!fs.existsSync(path.resolve(path.dirname(file), specifier))) wrong.push(`${path.relative(image, file)}: ${specifier} (missing)`);
          continue;
        }
        if (specifier.startsWith('node:') || builtins.has(specifier)) continue;
        if (!Object.hasOwn(pkg.dependencies, packageOf(specifier))) wrong.push(`${path.relative(image, file)}: ${specifier} (not a production dependency)`);
      }
    }
    expect(wrong).toEqual([]);
    expect(fs.readdirSync(path.join(image, 'dist/shared/db/migrations')).filter((f) => f.endsWith('.sql')).length).toBeGreaterThan(0);
  });

  it('runs dist/ where there are no sources, and a worker started from it answers /health', async () => {
    const env = {
      PATH: process.env.PATH!, HOME: process.env.HOME ?? image, LOG_LEVEL: 'warn', DB_URI: database.url, REDIS_URL,
      QUAYFLEET_CONFIG: path.join(image, 'config.yaml'), QUAYFLEET_DATA_DIR: path.join(image, 'data'),
      QUAYFLEET_METRICS_PORT: String(METRICS_PORT), QUAYFLEET_HTTP_PORT: String(HTTP_PORT),
    };
    fs.writeFileSync(env.QUAYFLEET_CONFIG, `DISTRIBUTED_STORAGE_CONFIG:\n  default: [LocalStorage, {storage_path: ${path.join(image, 'storage')}}]\nDISTRIBUTED_STORAGE_PREFERENCE: [default]\n`);
    expect((await run(process.execPath, ['bin/quayfleet.js', '--version'], { cwd: image, env })).stdout).toMatch(/\(dist\)/);

    const child = spawn(process.execPath, ['bin/quayfleet.js', 'worker', 'gcworker'], { cwd: image, env, stdio: ['ignore', 'ignore', 'pipe'] });
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
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const body = await (await fetch(`http://127.0.0.1:${METRICS_PORT}/health/instance`)).json() as { data: { services: Record<string, boolean> } };
      expect(body.data.services).toMatchObject({ database: true, redis: true });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(/tsx|\.ts:/);
  });
});
