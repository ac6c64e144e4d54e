/**
 * `quayfleet dlq list [QUEUE]`, `dlq replay QUEUE [JOB|--all]`, `dlq drop QUEUE [JOB|--all]`: the
 * dead letters (jobs that failed permanently or ran out of attempts, kept a week with their
 * reason). A replayed job runs again under the same job id, with all its attempts, although that
 * id (its dedupe id) is held by the dead letter itself. `--all` shows a progress bar on a
 * terminal and plain progress lines otherwise, on stderr.
 */
import type { Command } from 'commander';
import { ALL_QUEUE_NAMES, contractFor } from '../../queues/index.ts';
import type { Producer } from '../../shared/runtime/producer.ts';
import { boot, fail } from '../boot.ts';

/** Registers `dlq` and its subcommands. */
export function registerDlq(program: Command): void {
  const dlq = program
    .command('dlq')
    .description('dead letters: list them, replay them (run again with all attempts), drop them');

  dlq
    .command('list')
    .description('list dead letters, newest first: of one queue, or of every queue')
    .argument('[queue]', 'a queue name (see `quayfleet queues`)')
    .option('--limit <n>', 'dead letters listed per queue', '50')
    .option('--json', 'print JSON instead of lines')
    .action(async (queue: string | undefined, options: { limit: string; json?: boolean }) => {
      if (queue !== undefined) checkQueue(queue);
      const limit = positiveInteger(options.limit, '--limit');
      await withProducer(async (producer) => {
        const { listDeadLetters } = await import('../../shared/runtime/queue-status.ts');
        const names = queue === undefined ? ALL_QUEUE_NAMES.filter((name) => contractFor(name)) : [queue];
        const letters = (await Promise.all(names.map((name) => listDeadLetters(producer, name, { limit })))).flat();
        if (options.json) {
          process.stdout.write(`${JSON.stringify(letters, null, 2)}\n`);
          return;
        }
        if (letters.length === 0) process.stdout.write('no dead letters\n');
        for (const letter of letters) {
          const when = letter.failedAt?.toISOString() ?? '-';
          const kind = letter.permanent ? 'permanent' : `after ${letter.attemptsMade} attempts`;
          process.stdout.write(`${letter.queueName}  ${letter.jobId}  ${when}  ${kind}  ${letter.reason}\n`);
        }
      });
    });

  for (const [action, summary] of [
    ['replay', 'put dead letters back in their queue with all their attempts, under the same job id'],
    ['drop', 'remove dead letters for good'],
  ] as const) {
    dlq
      .command(action)
      .description(summary)
      .argument('<queue>', 'a queue name')
      .argument('[job]', 'the job id (see `quayfleet dlq list`)')
      .option('--all', 'every dead letter of the queue')
      .action(async (queue: string, job: string | undefined, options: { all?: boolean }) => {
        checkQueue(queue);
        if ((job === undefined) === !options.all) fail(`dlq ${action}: give a job id or --all (not both)`);
        await withProducer(async (producer) => {
          const letters = await import('../../shared/runtime/dead-letters.ts');
          if (options.all) {
            const { progressOn } = await import('../progress.ts');
            const progress = progressOn(`dlq ${action} ${queue}`);
            const count = await (action === 'replay' ? letters.replayAllDeadLetters : letters.dropAllDeadLetters)(producer, queue, (done, total) => progress.update(done, total))
              .finally(() => progress.stop());
            process.stdout.write(`${action === 'replay' ? 'replayed' : 'dropped'} ${count} dead letter${count === 1 ? '' : 's'} of ${queue}\n`);
            return;
          }
          try {
            await (action === 'replay' ? letters.replayDeadLetter : letters.dropDeadLetter)(producer, queue, job!);
          } catch (error) {
            if (!(error instanceof letters.DeadLetterNotFoundError)) throw error;
            process.stderr.write(`quayfleet: ${error.message}\n`);
            process.exitCode = 1;
            return;
          }
          process.stdout.write(`${action === 'replay' ? 'replayed' : 'dropped'} ${queue} ${job}\n`);
        });
      });
  }
}

function checkQueue(queue: string): void {
  if (!contractFor(queue)) fail(`unknown queue "${queue}"; queues: ${ALL_QUEUE_NAMES.filter((name) => contractFor(name)).join(', ')}`);
}

function positiveInteger(value: string, option: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`${option} must be a positive whole number, got "${value}"`);
  return n;
}

/** Redis from REDIS_URL/BUILDLOGS_REDIS, else the embedded Redis of a running `npm start`. */
async function withProducer(work: (producer: Producer) => Promise<void>): Promise<void> {
  const booted = await boot('dlq', { redis: true, allowEmbedded: false, reuseEmbedded: true, db: false });
  const { createProducer } = await import('../../shared/runtime/producer.ts');
  const producer = createProducer({ url: booted.redisUrl! });
  try {
    await work(producer);
  } finally {
    await producer.close();
    await booted.stopEmbedded();
  }
}
