/**
 * `quayfleet replication backfill`: enqueues replication of every blob some required location
 * lacks (Quay's util/backfillreplication.py), printing each queued digest on stdout, with a
 * progress bar on stderr when it is a terminal (plain progress lines otherwise). A second run once
 * the queue has drained prints nothing. `quayfleet replication status`: per location, blobs held,
 * bytes, missing, queued and failed, so "done" is a fact rather than an empty output.
 */
import type { Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { createPool } from '../../shared/db/pool.ts';
import type { LocationStatus } from '../../shared/db/replication.ts';
import { createProducer } from '../../shared/runtime/producer.ts';
import { replicationGate } from '../../shared/storage/replication-gate.ts';
import { backfillReplication, replicationStatusReport, type BackfillListener } from '../../workers/storagereplicationworker/backfill.ts';
import { boot, fail, type Booted } from '../boot.ts';

/** Registers `replication backfill` and `replication status`. */
export function registerReplication(program: Command): void {
  const replication = program.command('replication').description('geo-replication: enqueue missing copies, and show what every location holds');
  replication
    .command('backfill')
    .description('enqueue replication of every blob some required location lacks; prints each queued digest')
    .action(async () => {
      await withServices('replication-backfill', async ({ booted, pool, producer }) => {
        const gate = replicationGate(booted.config.quay);
        if (!gate.enabled) fail(`replication backfill: ${gate.reason}`);
        const locations = Object.keys(booted.config.quay.DISTRIBUTED_STORAGE_CONFIG);
        const listener = process.stderr.isTTY ? barListener() : lineListener();
        const result = await backfillReplication(pool, producer, { defaultLocations: booted.config.quay.DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS, locations, listener });
        listener.done?.();
        if (!process.stderr.isTTY) process.stderr.write(`examined ${result.examined} blobs, queued ${result.queued}\n`);
      });
    });
  replication
    .command('status')
    .description('per location: blobs held, bytes, missing, queued, failed')
    .option('--json', 'print JSON instead of a table')
    .action(async (options: { json?: boolean }) => {
      await withServices('replication-status', async ({ booted, pool, producer }) => {
        const rows = await replicationStatusReport(pool, producer, booted.config.quay.DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS);
        process.stdout.write(options.json ? `${JSON.stringify(rows, null, 2)}\n` : formatStatus(rows));
      });
    });
}

async function withServices(name: string, run: (s: { booted: Booted; pool: ReturnType<typeof createPool>; producer: ReturnType<typeof createProducer> }) => Promise<void>): Promise<void> {
  const booted = await boot(name, { redis: true, allowEmbedded: true });
  const pool = createPool({ connectionString: booted.dbUri, max: 2, applicationName: `quayfleet-${name}` });
  const producer = createProducer({ url: booted.redisUrl! });
  try {
    await run({ booted, pool, producer });
  } finally {
    await producer.close();
    await pool.end();
    await booted.stopEmbedded();
  }
}

type Listener = BackfillListener & { done?(): void };

/** Digests on stdout, a cli-progress bar on stderr (a terminal). */
function barListener(): Listener {
  const bar = new SingleBar({ stream: process.stderr, format: 'backfill [{bar}] {percentage}% | blob id {value}/{total} | queued {queued}', hideCursor: true });
  return {
    start: (maxId) => bar.start(maxId, 0, { queued: 0 }),
    progress: (lastId, queued) => bar.update(lastId, { queued }),
    queued: (blob) => {
      // Printed above the bar: cli-progress redraws it on the next update.
      process.stderr.write('\r\x1b[K');
      process.stdout.write(`${blob.digest}\n`);
    },
    done: () => bar.stop(),
  };
}

/** Digests on stdout, one plain progress line per page on stderr (not a terminal: logs, CI). */
function lineListener(): Listener {
  let total = 0;
  return {
    start: (maxId) => { total = maxId; },
    progress: (lastId, queued) => process.stderr.write(`backfill: examined blob ids up to ${lastId} of ${total}, queued ${queued}\n`),
    queued: (blob) => process.stdout.write(`${blob.digest}\n`),
  };
}

/** The status as a table and a verdict line. */
export function formatStatus(rows: readonly LocationStatus[]): string {
  const header = ['LOCATION', 'HELD', 'BYTES', 'MISSING', 'QUEUED', 'FAILED'];
  const table = [header, ...rows.map((r) => [r.location, r.held, r.bytes, r.missing, r.queued, r.failed].map(String))];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  const missing = rows.reduce((n, r) => n + r.missing, 0);
  const queued = rows.reduce((n, r) => n + r.queued, 0);
  const failed = rows.reduce((n, r) => n + r.failed, 0);
  lines.push(missing === 0
    ? 'replication complete: every blob is in every location it must be in'
    : `replication incomplete: ${missing} copies missing (${queued} queued, ${failed} failed, ${missing - queued - failed} not queued: run quayfleet replication backfill)`);
  return `${lines.join('\n')}\n`;
}
