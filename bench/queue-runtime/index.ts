/**
 * Benchmark: the worker runtime's overhead. No-op jobs through `runWorker` (payload validation,
 * context, outcome mapping, metrics, limiter, abort signal) against a bare BullMQ Worker with an
 * empty processor, on the same Redis, at the same concurrency (1, 10, 50), same job count.
 *
 * All workers run the whole time, each on its own queue. The jobs are fed in short slices that
 * rotate between the sides (queue paused, slice added, queue resumed, clock runs until the slice
 * is done), so load from other processes on a shared machine hits every side alike. The ratio of
 * a concurrency is the median over rounds of runtime/bare; jobs/s is total jobs over total time
 * per side. A third side, a second bare worker, measures the noise floor: its median ratio to the
 * first would be 1.000 on a quiet machine.
 *
 * Env: BENCH_SCALE (jobs per side and concurrency = 10 000 x scale, default 1), BENCH_SLICE (jobs
 * per slice, default 250), BENCH_REDIS_URL (default redis://127.0.0.1:6379).
 * The last line printed is one JSON object.
 */
import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { pino } from 'pino';
import { z } from 'zod';
import { defineQueue, jobOptions, REMOVE_COMPLETED } from '../../queues/contract.ts';
import { parseConfig } from '../../shared/config/index.ts';
import { createPool } from '../../shared/db/pool.ts';
import { runWorker } from '../../shared/runtime/run-worker.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { loadLine, printResult } from '../report.ts';

console.log(loadLine('before'));

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const SLICE = Math.max(50, Number(process.env.BENCH_SLICE ?? 250));
const JOBS = Math.max(SLICE * 2, Math.round((10_000 * SCALE) / SLICE) * SLICE);
const CONCURRENCIES = [1, 10, 50];
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const connection = { url: REDIS_URL, maxRetriesPerRequest: null };

const benchQueue = defineQueue({
  name: 'benchnoop',
  version: 1,
  payload: z.object({ v: z.literal(1), n: z.number().int().nonnegative(), repositoryId: z.number().int().positive() }),
  jobOptions: jobOptions({ removeOnComplete: REMOVE_COMPLETED }),
  dedupeId: (p) => `benchnoop/${p.n}`,
  logBindings: (p) => ({ repositoryId: p.repositoryId }),
});

const log = pino({ level: 'info' }, pino.destination('/dev/null'));
const config = parseConfig({});
// Never queried by the no-op handler; present because every worker gets a pool.
const db = createPool({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres', max: 1 });

/** `control` is a second bare worker: its ratio to `bare` shows how much of a ratio is noise. */
type SideName = 'bare' | 'runtime' | 'control';
const SIDE_NAMES: readonly SideName[] = ['bare', 'runtime', 'control'];

/** One side under test: a running worker on its own queue, and a counter of jobs it finished. */
class Side {
  readonly prefix = `bench:qr:${randomBytes(4).toString('hex')}`;
  readonly queue = new Queue(benchQueue.name, { connection, prefix: this.prefix });
  seconds = 0;
  jobs = 0;
  /** CPU time this process spent during the side's slices (user + system), in microseconds. */
  cpuMicros = 0;
  private done = 0;
  private next = 0;
  private target = 0;
  private reached: () => void = () => undefined;
  stop: () => Promise<void> = async () => undefined;

  constructor(readonly name: SideName) {}

  /** Counts one finished job; the processor or handler of the side calls it. */
  readonly count = (): void => {
    if (++this.done === this.target) this.reached();
  };

  /** Runs one slice of `size` jobs; returns its jobs per second. */
  async slice(size: number): Promise<number> {
    await this.queue.pause();
    const batch = [];
    for (let i = 0; i < size; i++, this.next++) {
      const data = { v: 1 as const, n: this.next, repositoryId: 1 + (this.next % 97) };
      batch.push({ name: benchQueue.name, data, opts: { ...benchQueue.jobOptions, jobId: benchQueue.dedupeId(data) } });
    }
    await this.queue.addBulk(batch);
    const reached = new Promise<void>((resolve) => { this.reached = resolve; });
    this.target = this.done + size;
    const cpu = process.cpuUsage();
    const started = performance.now();
    await this.queue.resume();
    await reached;
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    this.cpuMicros += used.user + used.system;
    this.seconds += seconds;
    this.jobs += size;
    return size / seconds;
  }

  async close(): Promise<void> {
    await this.stop();
    await this.queue.obliterate({ force: true });
    await this.queue.close();
  }
}

async function startSide(name: SideName, concurrency: number): Promise<Side> {
  const side = new Side(name);
  if (name !== 'runtime') {
    const worker = new Worker(benchQueue.name, async () => { side.count(); }, { connection, prefix: side.prefix, concurrency });
    await worker.waitUntilReady();
    side.stop = () => worker.close();
  } else {
    const definition = defineWorker({ name: 'benchworker', queue: benchQueue, concurrency, handler: async () => { side.count(); } });
    const running = await runWorker(definition, { config, services: { db }, redis: { url: REDIS_URL, prefix: side.prefix }, log });
    if (running.disabled) throw new Error('bench worker unexpectedly disabled');
    side.stop = () => running.stop(10_000);
  }
  return side;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One concurrency's figures. */
interface Figures {
  readonly concurrency: number;
  readonly bareJobsPerSecond: number;
  readonly runtimeJobsPerSecond: number;
  /** Median of runtime/bare over the rounds (each round runs one slice per side, back to back). */
  readonly ratio: number;
  /** runtime/bare of the totals. */
  readonly totalRatio: number;
  /** Median of control/bare over the same rounds: the ratio two identical bare workers get here. */
  readonly controlRatio: number;
  /** CPU time of this process per job: less sensitive to other load than wall time. */
  readonly bareCpuMicrosPerJob: number;
  readonly runtimeCpuMicrosPerJob: number;
  readonly rounds: number;
}

async function measureConcurrency(concurrency: number): Promise<Figures> {
  const sides = {} as Record<SideName, Side>;
  for (const name of SIDE_NAMES) sides[name] = await startSide(name, concurrency);
  // Warm-up slice per side (JIT, Redis scripts), not recorded.
  for (const name of SIDE_NAMES) await sides[name].slice(SLICE);
  for (const side of Object.values(sides)) side.seconds = side.jobs = side.cpuMicros = 0;
  const ratios: number[] = [];
  const controlRatios: number[] = [];
  for (let round = 0; round < JOBS / SLICE; round++) {
    // Rotate the order so no side always follows the same one.
    const order = SIDE_NAMES.map((_, i) => SIDE_NAMES[(i + round) % SIDE_NAMES.length]!);
    const rate = {} as Record<SideName, number>;
    for (const name of order) rate[name] = await sides[name].slice(SLICE);
    ratios.push(rate.runtime / rate.bare);
    controlRatios.push(rate.control / rate.bare);
  }
  const rateOf = (side: Side): number => side.jobs / side.seconds;
  const cpuOf = (side: Side): number => Number((side.cpuMicros / side.jobs).toFixed(1));
  const figures: Figures = {
    concurrency,
    bareJobsPerSecond: Math.round(rateOf(sides.bare)),
    runtimeJobsPerSecond: Math.round(rateOf(sides.runtime)),
    ratio: Number(median(ratios).toFixed(4)),
    totalRatio: Number((rateOf(sides.runtime) / rateOf(sides.bare)).toFixed(4)),
    controlRatio: Number(median(controlRatios).toFixed(4)),
    bareCpuMicrosPerJob: cpuOf(sides.bare),
    runtimeCpuMicrosPerJob: cpuOf(sides.runtime),
    rounds: ratios.length,
  };
  for (const side of Object.values(sides)) await side.close();
  console.log(`concurrency ${String(concurrency).padStart(2)}: bare ${figures.bareJobsPerSecond} jobs/s, runtime ${figures.runtimeJobsPerSecond} jobs/s, `
    + `ratio ${figures.ratio.toFixed(3)} (median of ${ratios.length} rounds; totals ${figures.totalRatio.toFixed(3)}; bare/bare control ${figures.controlRatio.toFixed(3)}); `
    + `CPU ${figures.bareCpuMicrosPerJob} vs ${figures.runtimeCpuMicrosPerJob} us/job`);
  return figures;
}

async function main(): Promise<void> {
  console.log(`queue-runtime: ${JOBS} no-op jobs per side and concurrency (${CONCURRENCIES.join('/')}), slices of ${SLICE}, ${REDIS_URL}`);
  const results: Figures[] = [];
  for (const concurrency of CONCURRENCIES) results.push(await measureConcurrency(concurrency));
  await db.end();
  const ratios = results.map((r) => r.ratio);
  const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
  printResult({
    benchmark: 'queue-runtime', jobs: JOBS, slice: SLICE, results,
    // The headline: mean over concurrencies of the per-concurrency median ratio (the minimum
    // of three noisy medians is biased low on a loaded machine; it is reported beside it).
    ratio: Number(mean.toFixed(4)), minRatio: Math.min(...ratios), target: 0.9,
  });
}

await main();
