/**
 * Action-log benchmark:
 *
 * 1. Export of 1M entries (BENCH_SCALE scales it) by the worker's stream (export.ts) in a child
 *    process of its own, into LocalStorage: rows/s and peak RSS growth. Peer, same run: the same
 *    rows rendered by the same SQL and written to a file by one `COPY ... TO STDOUT` through psql
 *    (the physical floor: no paging, no Node), and a 200k-entry export in the same child, whose
 *    RSS growth shows whether memory depends on the row count.
 * 2. Pull-log cost: 20,000 pull_repo entries written one INSERT each (Quay's way, inside the
 *    request) against the PullLogBuffer (one INSERT per 500), in µs per pull.
 *
 *   npm run bench -- log-export
 *
 * Needs Postgres at TEST_DATABASE_URL (default 127.0.0.1:5432) and psql. The last line is one JSON object.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { logAction, NO_LOG_SKIPS } from '../../shared/db/logs.ts';
import { createLogger } from '../../shared/runtime/logger.ts';
import { PullLogBuffer } from '../../registry/v2/pull-logs.ts';
import { createTestDatabase } from '../../test/helpers/db.ts';
import { preparePostgresTemplate } from '../../test/servers/postgres-redis.ts';
import { loadLine, printResult } from '../report.ts';

console.log(loadLine('before'));

const scale = Number(process.env.BENCH_SCALE ?? 1);
const ROWS = Math.max(10_000, Math.round(1_000_000 * scale));
const SMALL = Math.max(5000, Math.round(ROWS / 5));
const PULLS = 20_000;

await preparePostgresTemplate();
const database = await createTestDatabase('logsbench');
const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'quayfleet-logsbench-'));

async function seed(namespaceId: number, rows: number): Promise<void> {
  for (let from = 1; from <= rows; from += 250_000) {
    const to = Math.min(rows, from + 249_999);
    await database.pool.query(
      `INSERT INTO logentry (kind, account_id, performer_id, repository_id, ip, metadata_json, datetime)
       SELECT 'pull_repo', $1, NULL, 7, '10.0.0.1', jsonb_build_object('repo', 'web', 'namespace', 'bench', 'tag', 'v' || g, 'user-agent', 'skopeo/1.14'),
              timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second'
       FROM generate_series($2::int, $3::int) g`, [namespaceId, from, to]);
  }
  await database.pool.query('ANALYZE logentry');
}

interface ChildFigures { rows: number; bytes: number; ms: number; rssBeforeBytes: number; peakRssBytes: number }

async function exportInChild(namespaceId: number): Promise<ChildFigures> {
  const target = await fsp.mkdtemp(path.join(dir, 'export-'));
  const { stdout } = await promisify(execFile)(process.execPath, [
    '--import', 'tsx', 'workers/exportactionlogsworker/memory-child.ts', database.url, String(namespaceId), target, '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z',
  ], { maxBuffer: 1 << 20 });
  await fsp.rm(target, { recursive: true, force: true });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildFigures;
}

const VIEW = `json_build_object('kind', e.kind, 'metadata', e.metadata_json, 'ip', e.ip,
  'datetime', to_char(e.datetime AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS') || ' -0000')::text`;

async function copyPeer(namespaceId: number): Promise<{ ms: number; bytes: number }> {
  const file = path.join(dir, 'copy.json');
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('psql', [database.url, '-qAt', '-c',
      `COPY (SELECT ${VIEW} FROM logentry e LEFT JOIN namespace p ON p.id = e.performer_id WHERE e.account_id = ${namespaceId}
             AND e.datetime >= '2026-01-01' AND e.datetime < '2027-01-01' ORDER BY e.datetime, e.id) TO STDOUT`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = fs.createWriteStream(file);
    child.stdout.pipe(out);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? out.on('close', resolve) : reject(new Error(`psql exited ${code}`))));
  });
  const ms = performance.now() - started;
  const { size } = await fsp.stat(file);
  await fsp.rm(file);
  return { ms, bytes: size };
}

async function pullCost(): Promise<{ perInsertUs: number; batchedUs: number }> {
  const entry = (i: number) => ({ kind: 'pull_repo' as const, namespace: { id: 3, name: 'pulls' }, repositoryId: 9, ip: '10.0.0.2', metadata: { repo: 'web', namespace: 'pulls', tag: `t${i}` } });
  let started = performance.now();
  for (let i = 0; i < PULLS; i++) await logAction(database.pool, NO_LOG_SKIPS, entry(i));
  const perInsertUs = ((performance.now() - started) * 1000) / PULLS;
  const buffer = new PullLogBuffer(database.pool, NO_LOG_SKIPS, createLogger({ level: 'silent' }));
  started = performance.now();
  for (let i = 0; i < PULLS; i++) buffer.add(entry(i));
  await buffer.close();
  const batchedUs = ((performance.now() - started) * 1000) / PULLS;
  return { perInsertUs, batchedUs };
}

try {
  console.log(`seeding ${ROWS} + ${SMALL} entries`);
  await seed(1, ROWS);
  await seed(2, SMALL);
  const big = await exportInChild(1);
  const small = await exportInChild(2);
  const copy = await copyPeer(1);
  const MiB = 1024 * 1024;
  const rowsPerS = (rows: number, ms: number) => Math.round(rows / (ms / 1000));
  console.log(`export ${big.rows} entries: ${(big.ms / 1000).toFixed(1)} s, ${rowsPerS(big.rows, big.ms)} rows/s, ${(big.bytes / MiB).toFixed(1)} MiB, `
    + `RSS ${(big.rssBeforeBytes / MiB).toFixed(0)} -> peak ${(big.peakRssBytes / MiB).toFixed(0)} MiB (+${((big.peakRssBytes - big.rssBeforeBytes) / MiB).toFixed(0)})`);
  console.log(`export ${small.rows} entries: RSS +${((small.peakRssBytes - small.rssBeforeBytes) / MiB).toFixed(0)} MiB`);
  console.log(`peer COPY TO STDOUT via psql: ${(copy.ms / 1000).toFixed(1)} s, ${rowsPerS(ROWS, copy.ms)} rows/s, ${(copy.bytes / MiB).toFixed(1)} MiB`);
  const pulls = await pullCost();
  console.log(`pull logs: one INSERT per pull ${pulls.perInsertUs.toFixed(0)} µs, batched ${pulls.batchedUs.toFixed(1)} µs per pull`);
  printResult({
    bench: 'log-export', rows: big.rows, exportRowsPerS: rowsPerS(big.rows, big.ms), copyRowsPerS: rowsPerS(ROWS, copy.ms),
    ratio: Number((copy.ms / big.ms).toFixed(3)), exportBytes: big.bytes,
    peakRssMiB: Math.round(big.peakRssBytes / MiB), rssGrowthMiB: Math.round((big.peakRssBytes - big.rssBeforeBytes) / MiB),
    rssGrowthSmallMiB: Math.round((small.peakRssBytes - small.rssBeforeBytes) / MiB), smallRows: small.rows,
    pullLogPerInsertUs: Number(pulls.perInsertUs.toFixed(1)), pullLogBatchedUs: Number(pulls.batchedUs.toFixed(2)), loadAverage: os.loadavg()[0],
  });
} finally {
  await database.drop();
  await fsp.rm(dir, { recursive: true, force: true });
}
