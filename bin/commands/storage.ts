/**
 * `quayfleet storage remove-location NAME [--yes] [--force]` (Quay's util/removelocation.py): asks
 * Quay's question, refuses while any blob's only copy is in NAME (unless --force), deletes the
 * location's placements in batches printing `Deleted placement N`, then `Deleted location NAME`.
 * Storage objects are not touched. Run it after removing NAME from DISTRIBUTED_STORAGE_CONFIG
 * (processes re-create the row of every configured location when they start).
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { locationId, placementCount, removeLocation, soleCopyCount } from '../../shared/db/locations.ts';
import { createPool } from '../../shared/db/pool.ts';
import { boot, fail } from '../boot.ts';
import { progressOn } from '../progress.ts';

/** Registers `storage remove-location`. */
export function registerStorage(program: Command): void {
  const storage = program.command('storage').description('storage locations');
  storage
    .command('remove-location')
    .argument('<name>', 'the location to remove')
    .description('delete a storage location and its placements (objects in storage are left alone)')
    .option('--yes', 'do not ask for confirmation')
    .option('--force', 'remove even when some blobs have no copy anywhere else (they become unreadable)')
    .action(async (name: string, options: { yes?: boolean; force?: boolean }) => {
      const booted = await boot('storage-remove-location', { redis: false, allowEmbedded: true });
      const pool = createPool({ connectionString: booted.dbUri, max: 2, applicationName: 'quayfleet-remove-location' });
      try {
        const id = await locationId(pool, name);
        if (id === undefined) fail(`storage remove-location: no storage location named "${name}"`);
        const soleCopies = await soleCopyCount(pool, id);
        if (soleCopies > 0 && !options.force) {
          process.stderr.write(`quayfleet: refusing to remove ${name}: ${soleCopies} blob(s) have their only copy there. `
            + 'Replicate them first (quayfleet replication status, quayfleet replication backfill), or pass --force to lose them.\n');
          process.exitCode = 1;
          return;
        }
        if (booted.config.quay.DISTRIBUTED_STORAGE_CONFIG[name]) {
          process.stderr.write(`warning: ${name} is still in DISTRIBUTED_STORAGE_CONFIG; processes started with this configuration re-create it\n`);
        }
        if (!options.yes && !(await confirm(`WARNING: This is a destructive operation. Are you sure you want to remove ${name} from your storage locations? [y/n] `))) {
          process.stdout.write('Nothing was removed.\n');
          process.exitCode = 1;
          return;
        }
        // Quay's `Deleted placement N` lines, or on a terminal a progress bar instead (stderr).
        const placements = await placementCount(pool, id);
        const progress = process.stdout.isTTY ? progressOn(`storage remove-location ${name} (placements)`) : undefined;
        let deleted = 0;
        await removeLocation(pool, id, {
          onPlacement: (placementId) => {
            deleted += 1;
            if (progress) progress.update(deleted, placements);
            else process.stdout.write(`Deleted placement ${placementId}\n`);
          },
        }).finally(() => progress?.stop());
        process.stdout.write(`Deleted location ${name}\n`);
      } finally {
        await pool.end();
        await booted.stopEmbedded();
      }
    });
}

/** Asks `question` on stdin; true for `y` or `yes`, false for anything else or no answer (end of input). */
async function confirm(question: string): Promise<boolean> {
  process.stdout.write(question);
  const rl = createInterface({ input: process.stdin });
  const answer = await new Promise<string>((resolve) => {
    rl.once('line', resolve);
    rl.once('close', () => resolve(''));
  });
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}
