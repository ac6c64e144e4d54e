#!/usr/bin/env node
// Runs benchmarks: `npm run bench -- <name>` imports bench/<name>/index.ts through tsx;
// `npm run bench -- all` runs every one in sequence, each in its own process, and ends with one
// summary table built from each bench's last line (a JSON object). A bench that exits non-zero or
// prints no JSON has no ratio in the table, whatever it printed: a ratio against a peer that
// failed is not a figure. `npm run bench -- all <name>...` runs only those (e.g. to try the
// summary at small sizes: BENCH_SCALE, BENCH_ROUNDS, ... reach every bench through the environment).
// Without a name, or with an unknown one, it lists the benchmarks.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(dir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(new URL(`./${entry.name}/index.ts`, import.meta.url)))
  .map((entry) => entry.name)
  .sort();
const name = process.argv[2];

if (name === 'all') {
  const only = process.argv.slice(3);
  const unknown = only.filter((bench) => !available.includes(bench));
  if (unknown.length > 0) {
    console.error(`unknown benchmark: ${unknown.join(', ')}\navailable benchmarks: ${available.join(', ')}`);
    process.exit(1);
  }
  await runAll(only.length > 0 ? only : available);
} else if (!name || !available.includes(name)) {
  if (name) console.error(`unknown benchmark: ${name}`);
  console.error(`usage: npm run bench -- <name>|all\navailable benchmarks: ${available.join(', ') || '(none)'}`);
  process.exit(name ? 1 : 0);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(`./${name}/index.ts`);
}

/** Runs one bench as a child process, echoing its output; resolves with its exit code and last JSON line. */
function runOne(bench) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), bench], { stdio: ['ignore', 'pipe', 'inherit'] });
    let tail = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString()).slice(-200_000);
    });
    child.once('exit', (code, signal) => {
      const last = tail.trimEnd().split('\n').at(-1) ?? '';
      let result;
      try {
        result = JSON.parse(last);
      } catch {
        result = undefined;
      }
      resolve({ code: code ?? (signal ? 128 : 1), result });
    });
  });
}

/** The headline ratio of a bench's JSON line: `ratio` when a number, else the mean of its numbers. */
function headline(result) {
  const ratio = result?.ratio;
  if (typeof ratio === 'number') return ratio;
  if (ratio && typeof ratio === 'object') {
    const values = Object.values(ratio).filter((v) => typeof v === 'number');
    return values.length ? Object.fromEntries(Object.entries(ratio).filter(([, v]) => typeof v === 'number')) : undefined;
  }
  return undefined;
}

async function runAll(benches) {
  const loadBefore = os.loadavg();
  const rows = [];
  for (const bench of benches) {
    console.log(`\n===== ${bench} (load average ${os.loadavg().map((n) => n.toFixed(2)).join(' ')})`);
    const started = Date.now();
    const { code, result } = await runOne(bench);
    const ratio = code === 0 && result && result.ratio !== null ? headline(result) : undefined;
    rows.push({
      bench, seconds: Math.round((Date.now() - started) / 1000),
      status: code !== 0 ? `failed (exit ${code})${result?.failed ? `: ${result.failed}` : ''}` : result ? 'ok' : 'no JSON line',
      ratio, load: result?.loadAverage,
    });
  }
  const fmt = (ratio) => ratio === undefined ? '—' : typeof ratio === 'number' ? ratio.toFixed(2)
    : Object.entries(ratio).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
  const loadOf = (load) => load ? `${load.before?.[0]?.toFixed(1) ?? '?'} → ${load.after?.[0]?.toFixed(1) ?? '?'}` : (Array.isArray(load) ? load[0].toFixed(1) : '—');
  console.log('\n| bench | status | ratio (>1 = quayfleet better) | load 1-min before → after | seconds |\n|---|---|---|---|---|');
  for (const row of rows) console.log(`| ${row.bench} | ${row.status} | ${fmt(row.ratio)} | ${loadOf(row.load)} | ${row.seconds} |`);
  console.log(`\nload average before: ${loadBefore.map((n) => n.toFixed(2)).join(' ')}, after: ${os.loadavg().map((n) => n.toFixed(2)).join(' ')} (${os.availableParallelism()} cores)`);
  console.log(JSON.stringify({ benchmark: 'all', results: rows, loadAverage: { before: loadBefore, after: os.loadavg() } }));
  if (rows.some((row) => row.status !== 'ok')) process.exitCode = 1;
}
