/**
 * Streams one export in a process of its own and prints its figures as one JSON line, so that
 * peak RSS belongs to the export alone (the memory test and bench/log-export). Test and bench only.
 *
 *   node --import tsx workers/exportactionlogsworker/memory-child.ts <db url> <namespace id> <storage dir> <start ISO> <end ISO>
 */
import { createPool } from '../../shared/db/pool.ts';
import { LocalStorage } from '../../shared/storage/drivers/local.ts';
import { streamExport } from './export.ts';

const [url, namespaceId, dir, start, end] = process.argv.slice(2);
const pool = createPool({ connectionString: url!, max: 2 });
const store = new LocalStorage({ storage_path: dir! });
await pool.query('SELECT 1');
const rssBeforeBytes = process.memoryUsage().rss;
let peakRssBytes = rssBeforeBytes;
const peaks = { heapUsed: 0, external: 0, arrayBuffers: 0 };
const sampler = setInterval(() => {
  const usage = process.memoryUsage();
  peakRssBytes = Math.max(peakRssBytes, usage.rss);
  peaks.heapUsed = Math.max(peaks.heapUsed, usage.heapUsed);
  peaks.external = Math.max(peaks.external, usage.external);
  peaks.arrayBuffers = Math.max(peaks.arrayBuffers, usage.arrayBuffers);
}, 20);
const startedMs = performance.now();
const range = { start: new Date(start!), end: new Date(end!) };
const result = await streamExport(pool, store, 'exportedactionlogs/bench', { exportId: '00000000-0000-4000-8000-000000000000', ...range, namespace: 'bench', repository: null },
  { namespaceId: Number(namespaceId), ...range }, { maxQueryMs: 3_600_000, maxTotalMs: 3_600_000 }, new AbortController().signal);
const ms = performance.now() - startedMs;
clearInterval(sampler);
peakRssBytes = Math.max(peakRssBytes, process.memoryUsage().rss);
console.log(JSON.stringify({ ...result, ms, rssBeforeBytes, peakRssBytes, peaks, maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
await pool.end();
await store.close();
