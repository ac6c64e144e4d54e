#!/usr/bin/env node
// Runs one benchmark: `npm run bench -- <name>` imports bench/<name>/index.ts through tsx.
// Without a name, or with an unknown one, it lists the benchmarks that exist.
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

const dir = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(dir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(new URL(`./${entry.name}/index.ts`, import.meta.url)))
  .map((entry) => entry.name)
  .sort();
const name = process.argv[2];

if (!name || !available.includes(name)) {
  if (name) console.error(`unknown benchmark: ${name}`);
  console.error(`usage: npm run bench -- <name>\navailable benchmarks: ${available.join(', ') || '(none)'}`);
  process.exit(name ? 1 : 0);
}

register();
await import(`./${name}/index.ts`);
