/**
 * What a fleet process hands every worker's handler (the runtime's `services`): the Postgres pool,
 * the distributed storage, the typed config, and the wake-up of its outbox relay. Workers declare the
 * subset they use.
 */
import type { Config } from '../shared/config/index.ts';
import type { Pool } from '../shared/db/pool.ts';
import type { DistributedStorage } from '../shared/storage/distributed.ts';

export interface FleetServices {
  readonly db: Pool;
  readonly storage: DistributedStorage;
  readonly config: Config;
  /**
   * Asks the process's outbox relay for a pass now, after a handler committed outbox rows (e.g. the
   * securityscanningnotificationworker's vulnerability_found events), so they are published without
   * waiting for a NOTIFY round trip or, were that lost, the relay's 10 s safety pass.
   */
  readonly onOutboxWrite?: () => void;
}
