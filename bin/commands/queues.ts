/** `quayfleet queues`: a table of every queue with its counts and oldest waiting job. */
import type { Command } from 'commander';
import { boot } from '../boot.ts';

/** Registers `queues`. */
export function registerQueues(program: Command): void {
  program
    .command('queues')
    .description('show every queue: waiting, active, delayed, failed (dead letters), oldest waiting age')
    .option('--json', 'print JSON instead of a table')
    .action(async (options: { json?: boolean }) => {
      const booted = await boot('queues', { redis: true, allowEmbedded: true, db: false });
      const { createProducer } = await import('../../shared/runtime/producer.ts');
      const { queueStatus } = await import('../../shared/runtime/queue-status.ts');
      const producer = createProducer({ url: booted.redisUrl! });
      try {
        const rows = await queueStatus(producer);
        if (options.json) {
          process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
          return;
        }
        const table = rows.map((r) => ({
          queue: r.queueName, waiting: r.waiting + r.prioritized, active: r.active, delayed: r.delayed,
          failed: r.failed, 'oldest age': r.oldestWaitingAgeSeconds === null ? '-' : `${Math.round(r.oldestWaitingAgeSeconds)}s`,
        }));
        printTable(table);
      } finally {
        await producer.close();
        await booted.stopEmbedded();
      }
    });
}

function printTable(rows: Record<string, string | number>[]): void {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  process.stdout.write(`${line(columns)}\n`);
  for (const row of rows) process.stdout.write(`${line(columns.map((c) => String(row[c])))}\n`);
}
