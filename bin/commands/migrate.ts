/** `quayfleet migrate`: applies the database migrations; idempotent and safe to run concurrently. */
import type { Command } from 'commander';
import { migrate } from '../../shared/db/migrate.ts';
import { boot } from '../boot.ts';

/** Registers the `migrate` command. */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('apply database migrations to DB_URI (safe to run twice or from several processes at once)')
    .action(async () => {
      const booted = await boot('migrate', { redis: false, allowEmbedded: false });
      try {
        const applied = await migrate(booted.dbUri);
        booted.log.info({ applied }, applied.length ? 'migrations applied' : 'database schema is current');
      } finally {
        await booted.stopEmbedded();
      }
    });
}
