import { defineConfig } from 'vitest/config';
import SlowFirstSequencer from './test/sequencer.ts';

// Tests run against real servers (Postgres, Redis, RadosGW, Azurite, the GCS emulator). The global
// setup makes sure each one is up (starting it when it can) and fails loudly when one cannot be had.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'data/**', 'dist/**'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Slowest files first (test/sequencer.ts), so the long ones do not make the tail of the run.
    sequence: { sequencer: SlowFirstSequencer },
    pool: 'forks',
    // Two cores: a few files at a time keeps the servers responsive.
    poolOptions: { forks: { maxForks: 3, minForks: 1 } },
  },
});
