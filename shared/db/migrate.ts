/**
 * Applies the SQL migrations in ./migrations with node-pg-migrate. Safe to run twice and from
 * several processes at once: node-pg-migrate holds a Postgres advisory lock while it works.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

export const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Brings the database at `databaseUrl` up to the newest migration; returns the names applied. */
export async function migrate(databaseUrl: string, log: (msg: string) => void = () => undefined): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    count: Infinity,
    checkOrder: true,
    singleTransaction: true,
    log,
    verbose: false,
    // A second migrator waits for the first, then finds nothing left to apply.
    advisoryLockMode: 'wait',
  });
  return applied.map((m) => m.name);
}
