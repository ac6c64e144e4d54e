#!/usr/bin/env node
// The one entry point. It runs the bundled CLI (dist/cli.js, from `npm run build`): the image
// holds only dist/, and bundled JavaScript starts much faster and takes less memory than
// TypeScript compiled at run time. In a development checkout it runs the sources through tsx (a development
// dependency) instead whenever dist/ is missing or older than a source file, so a stale build never
// runs by accident; QUAYFLEET_FROM_SOURCE=1 forces the sources.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const compiled = path.join(root, 'dist', 'cli.js');
// Written by scripts/build.js as the last step of `npm run build`.
const buildStamp = path.join(root, 'dist', '.built');
const SOURCE_DIRS = ['bin', 'queues', 'shared', 'registry', 'workers'];

/** The newest modification time (ms) of a TypeScript or SQL source under `dir`; 0 when none. */
function newestSource(dir) {
  let newest = 0;
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (/\.(ts|sql)$/.test(entry.name) && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function useCompiled() {
  if (process.env.QUAYFLEET_FROM_SOURCE === '1' || !fs.existsSync(compiled)) return false;
  // The image carries no sources: nothing to compare, dist/ is what there is.
  if (!fs.existsSync(path.join(root, 'bin', 'cli.ts'))) return true;
  const built = fs.statSync(buildStamp, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  return SOURCE_DIRS.every((dir) => newestSource(path.join(root, dir)) <= built);
}

if (useCompiled()) {
  process.env.QUAYFLEET_BUILD = 'dist';
  await import(compiled);
} else {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write('quayfleet: dist/ is missing or out of date and tsx is not installed: run `npm run build` (or `npm install` for development)\n');
    process.exit(2);
  }
  process.env.QUAYFLEET_BUILD = 'sources';
  register();
  await import('./cli.ts');
}
