/**
 * What a fleet process hands every worker's handler (the runtime's `services`): the Postgres pool,
 * the distributed storage and the typed config. Workers declare the subset they use.
 */
import type { Config } from '../shared/config/index.ts';
import type { Pool } from '../shared/db/pool.ts';
import type { DistributedStorage } from '../shared/storage/distributed.ts';

export interface FleetServices {
  readonly db: Pool;
  readonly storage: DistributedStorage;
  readonly config: Config;
}
