// The reliability runner: `npm run reliability -- --minutes N [--parts soak,kill,faults,fuzz,security]`.
// Runs the chosen parts in order, prints each part's figures, and prints as its last line one JSON
// object `{ "reliability": {<part>: figures}, "minutes": N, "loadAverage": [1, 5, 15] }`. Exits 1 if
// any part failed (ok:false, dataLost > 0, threw, or is not built).
//
// The fleet's processes run the compiled build: the runner brings dist/ up to date first (`npm run
// build`) and pins it for the run, since a process loading through tsx takes tens of
// seconds on two loaded cores where dist/ takes a few, and the kill part restarts processes
// hundreds of times. `--from-source` runs the sources through tsx instead.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fleetBuild, stopFleetsOnSignal, useCompiledBuild } from './fleet.ts';
import { PART_NAMES, type PartFigures, type PartRun } from './types.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

export interface RunnerArgs {
  minutes: number;
  parts: string[];
  short: boolean;
  /** Run the processes from the sources through tsx (default: build dist/ and run it). */
  fromSource: boolean;
}

export function parseArgs(argv: string[]): RunnerArgs {
  const args: RunnerArgs = { minutes: 5, parts: [...PART_NAMES], short: false, fromSource: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--minutes') {
      const n = Number(value());
      if (!Number.isFinite(n) || n <= 0) throw new Error('--minutes must be a positive number');
      args.minutes = n;
    } else if (flag === '--parts') {
      args.parts = value().split(',').map((p) => p.trim()).filter(Boolean);
    } else if (flag === '--short') {
      args.short = true;
    } else if (flag === '--from-source') {
      args.fromSource = true;
    } else if (flag === '--help' || flag === '-h') {
      process.stdout.write(`usage: npm run reliability -- [--minutes N] [--parts ${PART_NAMES.join(',')}] [--short] [--from-source]\n`);
      process.exit(0);
    } else {
      throw new Error(`unknown argument ${arg}`);
    }
  }
  return args;
}

export function loadAverage(): number[] {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return [];
  }
}

export function partFailed(figures: PartFigures): boolean {
  return figures.ok !== true || !(figures.dataLost === 0);
}

async function runPart(name: string, minutes: number, short: boolean): Promise<PartFigures> {
  const file = join(here, name, 'index.ts');
  if (!existsSync(file)) return { ok: false, dataLost: 0, status: 'not built' };
  const started = Date.now();
  try {
    const mod = (await import(pathToFileURL(file).href)) as { run?: PartRun };
    if (typeof mod.run !== 'function') return { ok: false, dataLost: 0, status: 'no run() export' };
    const figures = await mod.run({
      minutes,
      short,
      log: (line) => process.stdout.write(`[${name}] ${line}\n`),
    });
    return { ...figures, wallSeconds: Math.round((Date.now() - started) / 100) / 10 };
  } catch (err) {
    return {
      ok: false,
      dataLost: 0,
      status: 'threw',
      error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      wallSeconds: Math.round((Date.now() - started) / 100) / 10,
    };
  }
}

/** Which build bin/quayfleet.js would run now: its --version says `(dist)` or `(sources)`. */
function entryPointBuild(): string {
  return execFileSync(process.execPath, [join(root, 'bin', 'quayfleet.js'), '--version'], { encoding: 'utf8', env: { ...process.env, QUAYFLEET_FROM_SOURCE: '' } }).trim();
}

/** Builds dist/ when bin/quayfleet.js finds it missing or older than a source, then pins it for the fleets. */
function prepareBuild(): void {
  const started = Date.now();
  if (!entryPointBuild().endsWith('(dist)')) {
    process.stdout.write('dist/ is missing or out of date: npm run build\n');
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', process.stderr, process.stderr] });
    const now = entryPointBuild();
    if (!now.endsWith('(dist)')) throw new Error(`after npm run build, bin/quayfleet.js still runs ${now}`);
  }
  useCompiledBuild();
  process.stdout.write(`fleet processes run ${fleetBuild()} (checked in ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  stopFleetsOnSignal();
  if (!args.fromSource) prepareBuild();
  const results: Record<string, PartFigures> = {};
  for (const name of args.parts) {
    process.stdout.write(`== ${name} (${args.minutes} min${args.short ? ', short' : ''}) load ${loadAverage().join(' ')}\n`);
    const figures = await runPart(name, args.minutes, args.short);
    results[name] = figures;
    process.stdout.write(`== ${name}: ${partFailed(figures) ? 'FAILED' : 'ok'} ${JSON.stringify(figures)}\n`);
  }
  const failed = Object.entries(results).filter(([, f]) => partFailed(f)).map(([n]) => n);
  if (failed.length > 0) process.stdout.write(`failed parts: ${failed.join(', ')}\n`);
  process.stdout.write(`${JSON.stringify({ reliability: results, minutes: args.minutes, build: fleetBuild(), loadAverage: loadAverage() })}\n`);
  return failed.length > 0 ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Parts may leave handles (pools, sockets) behind; the runner's verdict is final.
      setTimeout(() => process.exit(code), 500).unref();
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(2);
    },
  );
}
