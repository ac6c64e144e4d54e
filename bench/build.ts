/**
 * Benchmarks that run quayfleet as production does run the compiled build (dist/, what the image
 * holds), not the sources through tsx: this builds it when it is missing or older than the sources.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI = `${ROOT}bin/quayfleet.js`;

/** Runs `npm run build` unless bin/quayfleet.js would already run an up-to-date dist/. */
export function ensureBuilt(): void {
  const version = execFileSync(process.execPath, [CLI, '--version'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, QUAYFLEET_FROM_SOURCE: '' } });
  if (version.includes('(dist)')) return;
  console.log('building dist/ (npm run build)');
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
}
