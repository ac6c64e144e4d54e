/**
 * Quota benchmark, two figures:
 *
 * 1. Added latency of a manifest PUT with quota on versus off (target < 2 ms at p99), measured
 *    twice: (a) the quota step itself, timed inside the push transaction (hook.ts), on versus off,
 *    which is the figure the target is about; (b) end to end: two front ends in this process, one
 *    with FEATURE_QUOTA_MANAGEMENT on (an organization quota with Warning and Reject limits, totals
 *    complete, so every push takes the lock, updates the reference counts and totals, reads the
 *    limits), one with it off; the same tag pushes of new manifests (a new config blob and three
 *    layers from a shared pool) alternate between them, and only the manifest PUT is timed
 *    (`app.inject`, blobs uploaded beforehand). On a busy machine (b)'s p99 is mostly noise.
 * 2. Backfill of 1k namespaces, 10k repositories and 100k blobs (target < 30 s): rows inserted in
 *    bulk (5 manifests per repository, 4 blob links each, one base layer shared registry-wide),
 *    then every namespace found and computed as the worker does (8 at once), and the result
 *    checked against a from-scratch recomputation.
 *
 *   npm run bench -- quota        (BENCH_SCALE=0.1 for a tenth)
 *
 * Needs Postgres at TEST_DATABASE_URL (default 127.0.0.1:5432). The last line printed is one JSON object.
 */
import { performance } from 'node:perf_hooks';
import { auditQuotaTotals } from '../../shared/db/quota/audit.ts';
import { preparePostgresTemplate } from '../../test/servers/postgres-redis.ts';
import { createTestDatabase } from '../../test/helpers/db.ts';
import { backfillAll, insertRegistry } from './backfill.ts';
import { measureHook } from './hook.ts';
import { measurePushes } from './push.ts';
import { loadLine, printResult } from '../report.ts';

console.log(loadLine('before'));

const scale = Number(process.env.BENCH_SCALE ?? 1);
if (!(scale > 0)) throw new Error('BENCH_SCALE must be a positive number');
const PUSHES = Math.max(200, Math.round(2000 * scale));
const NAMESPACES = Math.max(10, Math.round(1000 * scale));

await preparePostgresTemplate();

// The quota step is timed in rounds, each in a fresh database: a p99 of one round on a 2-core
// machine moves by a millisecond with whatever else runs (the off side's p99 alone has read
// 0.41 ms in one run and 1.75 ms in another), so the figure reported is the median round's.
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5));
const rounds: Awaited<ReturnType<typeof measureHook>>[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const hookDatabase = await createTestDatabase('quotabenchhook');
  try {
    rounds.push(await measureHook(hookDatabase.pool, PUSHES));
  } finally {
    await hookDatabase.drop();
  }
}
const addedP99 = (h: (typeof rounds)[number]): number => h.on.p99 - h.off.p99;
const hook = [...rounds].sort((a, b) => addedP99(a) - addedP99(b))[Math.floor(rounds.length / 2)]!;
console.log(`quota step in the push transaction: ${PUSHES} tag pushes per side, ${ROUNDS} rounds (median round below)`);
console.log(`  off: p50 ${hook.off.p50.toFixed(3)} ms, p99 ${hook.off.p99.toFixed(3)} ms`);
console.log(`  on:  p50 ${hook.on.p50.toFixed(3)} ms, p99 ${hook.on.p99.toFixed(3)} ms`);
console.log(`  added: p50 ${(hook.on.p50 - hook.off.p50).toFixed(3)} ms, p99 ${addedP99(hook).toFixed(3)} ms (target < 2 ms at p99); `
  + `every round's added p99: ${rounds.map((h) => addedP99(h).toFixed(3)).join(', ')} ms`);

console.log(`manifest PUT end to end: ${PUSHES} tag pushes per side, quota on and off alternating`);
const push = await measurePushes(PUSHES);
console.log(`  off: p50 ${push.off.p50.toFixed(3)} ms, p99 ${push.off.p99.toFixed(3)} ms`);
console.log(`  on:  p50 ${push.on.p50.toFixed(3)} ms, p99 ${push.on.p99.toFixed(3)} ms`);
console.log(`  added: p50 ${push.addedP50Ms.toFixed(3)} ms, p99 ${push.addedP99Ms.toFixed(3)} ms`);

const database = await createTestDatabase('quotabench');
let backfill;
try {
  const shape = { namespaces: NAMESPACES, repositoriesPerNamespace: 10, manifestsPerRepository: 5, blobsPerNamespace: 100 };
  const insertStarted = performance.now();
  const counts = await insertRegistry(database.pool, shape);
  console.log(`backfill: ${counts.namespaces} namespaces, ${counts.repositories} repositories, ${counts.blobs} blobs, ${counts.manifests} manifests, `
    + `${counts.links} blob links inserted in ${((performance.now() - insertStarted) / 1000).toFixed(1)} s`);
  const started = performance.now();
  const computed = await backfillAll(database.pool, 8);
  const seconds = (performance.now() - started) / 1000;
  const mismatches = await auditQuotaTotals(database.pool);
  console.log(`  ${computed} namespaces computed in ${seconds.toFixed(2)} s (target < 30 s); exact: ${mismatches.length === 0}`);
  backfill = { ...counts, computed, seconds: Number(seconds.toFixed(3)), targetSeconds: 30, exact: mismatches.length === 0 };
} finally {
  await database.drop();
}

printResult({
  benchmark: 'quota', scale,
  quotaStep: {
    pushes: PUSHES,
    offMs: { p50: round(hook.off.p50), p99: round(hook.off.p99) },
    onMs: { p50: round(hook.on.p50), p99: round(hook.on.p99) },
    addedP50Ms: round(hook.on.p50 - hook.off.p50), addedP99Ms: round(addedP99(hook)), targetP99Ms: 2,
    rounds: ROUNDS, addedP99MsPerRound: rounds.map((h) => round(addedP99(h))),
  },
  manifestPut: {
    pushes: PUSHES,
    offMs: { p50: round(push.off.p50), p99: round(push.off.p99) },
    onMs: { p50: round(push.on.p50), p99: round(push.on.p99) },
    addedP50Ms: round(push.addedP50Ms), addedP99Ms: round(push.addedP99Ms),
  },
  backfill,
});

function round(ms: number): number {
  return Number(ms.toFixed(3));
}
