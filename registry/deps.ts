/**
 * What the front end needs, handed to it (not imported): built by the process in registry/server.ts
 * (or by a test) and passed to buildRegistryApp.
 */
import type { Config } from '../shared/config/index.ts';
import type { Pool } from '../shared/db/pool.ts';
import type { HealthChecks } from '../shared/runtime/health.ts';
import type { Logger } from '../shared/runtime/logger.ts';
import type { QueueSource } from '../shared/runtime/queue-status.ts';
import type { DistributedStorage } from '../shared/storage/distributed.ts';

export interface RegistryDeps {
  readonly config: Config;
  readonly db: Pool;
  readonly storage: DistributedStorage;
  readonly log: Logger;
  /** Secret (32+ bytes) the registry signs its bearer tokens and upload state with. */
  readonly tokenSecret: Uint8Array;
  /** Wall clock in ms; injectable so tests can move time (time machine, token expiry). */
  readonly now?: () => number;
  /** Called after a transaction wrote outbox rows, so a co-located relay publishes at once. */
  readonly onOutboxWrite?: () => void;
  /** Checks behind /health/* on the registry port (the metrics port serves the same). */
  readonly health?: HealthChecks;
  /** The fleet's queues, for the queue console (served only when config.queueConsole is on). */
  readonly queues?: QueueSource;
}
