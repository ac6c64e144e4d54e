/**
 * The long-running commands: `registry`, `worker <name>` and `all`. Pods run `registry` or
 * `worker <name>` with DB_URI and Redis configured; `all` (what `npm start` runs) may use the
 * embedded Postgres and Redis and applies migrations itself.
 */
import type { Command } from 'commander';
import { WORKERS, workerNamed } from '../../workers/index.ts';
import { boot, fail, loadConfigOrExit } from '../boot.ts';
import { createLogger } from '../../shared/runtime/logger.ts';

/** Registers `registry`, `worker <name>` and `all`. */
export function registerServeCommands(program: Command): void {
  program
    .command('registry')
    .description('run the front end: the OCI registry API (/v2), token auth and the Quay API (/api/v1)')
    .action(async () => {
      const booted = await boot('registry', { redis: true, allowEmbedded: false });
      const { runFleet } = await import('../fleet.ts');
      await runFleet(booted, { processName: 'registry', registry: true, workers: [], migrate: false });
    });

  program
    .command('worker')
    .description('run exactly one worker type')
    .argument('<name>', `one of: ${Object.keys(WORKERS).join(', ') || '(none yet)'}`)
    .action(async (name: string) => {
      const definition = workerNamed(name);
      if (!definition) fail(`unknown worker "${name}"; known workers: ${Object.keys(WORKERS).join(', ') || '(none)'}`);
      // A disabled worker exits 0 before opening any connection, so it never crash-loops.
      const gate = definition.gate?.(loadConfigOrExit());
      if (gate && !gate.enabled) {
        createLogger({ name }).info({ worker: name, reason: gate.reason }, 'worker disabled; exiting');
        return;
      }
      const booted = await boot(name, { redis: true, allowEmbedded: false });
      const { runFleet } = await import('../fleet.ts');
      await runFleet(booted, { processName: name, registry: false, workers: [definition], migrate: false });
    });

  program
    .command('all')
    .description('run the front end and every enabled worker in one process (development, small installs)')
    .action(async () => {
      const booted = await boot('all', { redis: true, allowEmbedded: true });
      const { runFleet } = await import('../fleet.ts');
      await runFleet(booted, { processName: 'all', registry: true, workers: Object.values(WORKERS), migrate: true });
    });
}
