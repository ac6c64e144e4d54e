/**
 * Where GC's SQL time goes at scale: EXPLAIN (ANALYZE, BUFFERS) of the sweep's expired-garbage
 * query and of the per-repository plan, on a registry of 10k manifests in 100 repositories with
 * 1M tag-history rows (tags ended within the 2-week time machine: history, not yet garbage) and 50
 * tags due. The sweep query is shown as it was (the cutoff computed per row: every ended tag read
 * each tick) and as it is (a `tag_end` range scan per distinct window).
 *
 *   npm run bench -- gc-plan          (BENCH_SCALE=0.1 for 100k history rows)
 *
 * The last line printed is one JSON object: median execution times over 5 runs, rows read.
 */
import { buildModel, insertModelRows } from '../../test/gc/bulk.ts';
import { PLAN_CTES } from '../../shared/db/gc/plan.ts';
import { EXPIRED_GARBAGE_SQL } from '../../shared/db/gc/sweep.ts';
import { ensureLocations } from '../../shared/db/blobs.ts';
import { createBenchDatabase } from '../gc/quayfleet.ts';
import { loadLine, printFailure, printResult } from '../report.ts';

const scale = Number(process.env.BENCH_SCALE ?? 1);
const HISTORY = Math.round(1_000_000 * scale);
const WINDOW_S = 1_209_600;
const DUE = 50;

/** The sweep query before this change: the per-namespace cutoff applied to every ended tag. */
const EXPIRED_GARBAGE_SQL_BEFORE = `SELECT id FROM (
   SELECT DISTINCT t.repository_id AS id FROM tag t
     JOIN repository r ON r.id = t.repository_id JOIN namespace n ON n.id = r.namespace_user_id
    WHERE t.lifetime_end_ms <= $1::bigint - n.removed_tag_expiration_s * 1000 AND r.state <> 3 AND NOT n.deleted
   UNION
   SELECT DISTINCT ub.repository_id FROM uploadedblob ub
     JOIN repository r ON r.id = ub.repository_id JOIN namespace n ON n.id = r.namespace_user_id
    WHERE ub.expires_at <= to_timestamp($1::float8 / 1000) AND r.state <> 3 AND NOT n.deleted
 ) g ORDER BY id LIMIT $2`;

console.log(loadLine('before'));
const db = await createBenchDatabase();
try {
  const nowMs = Date.now();
  const locationId = (await ensureLocations(db.pool, ['local'])).get('local')!;
  const model = buildModel({ namespaces: 10, repositories: 100, manifests: 10_000, blobsPerManifest: 5, garbageFraction: 0 });
  const repositoryIds = await insertModelRows(db.pool, model, { locationId, nowMs, windowS: WINDOW_S });
  const seeded = performance.now();
  // History: each row a tag that ended within the window (its manifest still live through the alive tag).
  await db.pool.query(
    `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms)
     SELECT 'h' || g, m.repository_id, m.id, $1::bigint - $2::bigint * 1000, $1::bigint - (g % ($2::bigint * 1000 - 3600000)) - 1
       FROM generate_series(1, $3::int) g JOIN manifest m ON m.id = (SELECT min(id) FROM manifest) + g % 10000`,
    [nowMs, WINDOW_S, HISTORY]);
  // Due: tags that left the time machine a minute ago, in 50 repositories.
  await db.pool.query(
    `INSERT INTO tag (name, repository_id, manifest_id, lifetime_start_ms, lifetime_end_ms)
     SELECT 'due' || g, r, NULL, $1::bigint - $2::bigint * 1000 - 120000, $1::bigint - $2::bigint * 1000 - 60000
       FROM generate_series(1, $3::int) g, LATERAL (SELECT ($4::bigint[])[1 + g % array_length($4::bigint[], 1)] AS r) x`,
    [nowMs, WINDOW_S, DUE, repositoryIds]);
  await db.pool.query('VACUUM ANALYZE');
  console.log(`seeded ${HISTORY} history rows and ${DUE} due tags in ${((performance.now() - seeded) / 1000).toFixed(1)} s`);

  const explain = async (label: string, sql: string, params: unknown[]): Promise<{ medianMs: number; rows: number; plan: string }> => {
    const client = await db.pool.connect();
    try {
      await client.query('SET jit = off');
      const times: number[] = [];
      let plan = '';
      for (let i = 0; i < 5; i++) {
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params);
        plan = rows.map((r) => r['QUERY PLAN']).join('\n');
        times.push(Number(/Execution Time: ([\d.]+) ms/.exec(plan)?.[1]));
      }
      const result = await client.query(sql, params);
      const medianMs = [...times].sort((a, b) => a - b)[2]!;
      console.log(`\n== ${label}: median ${medianMs.toFixed(2)} ms over 5 runs, ${result.rowCount} rows\n${plan}`);
      return { medianMs, rows: result.rowCount ?? 0, plan };
    } finally {
      client.release();
    }
  };
  const before = await explain('sweep, expired garbage (before: cutoff per row)', EXPIRED_GARBAGE_SQL_BEFORE, [nowMs, 1000]);
  const after = await explain('sweep, expired garbage (now: tag_end range per window)', EXPIRED_GARBAGE_SQL, [nowMs, 1000]);
  if (before.rows !== after.rows) throw new Error(`the two sweep queries disagree: ${before.rows} against ${after.rows} repositories`);
  const repository = await explain('per-repository plan: garbage manifests of one repository (10k history rows in it)',
    `${PLAN_CTES} SELECT id FROM garbage_manifests ORDER BY id`, [null, repositoryIds[0], nowMs, false]);
  printResult({
    benchmark: 'gc-plan', scale, historyRows: HISTORY, dueTags: DUE,
    sweepBeforeMs: before.medianMs, sweepAfterMs: after.medianMs, repositoriesDue: after.rows,
    perRepositoryPlanMs: repository.medianMs, ratio: Math.round((before.medianMs / after.medianMs) * 10) / 10,
  });
} catch (error) {
  printFailure('gc-plan', error);
} finally {
  await db.drop();
}
