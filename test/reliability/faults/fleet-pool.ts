/**
 * The fleets of a fault run: each a `quayfleet all` child process (front end and every worker),
 * with GC collecting at once (GC sweep every second, no time machine, 10 s upload leases), a user
 * of its own and a few repositories the load pushes to.
 */
import { createUser, pushToken, startFleetProcess, type FleetProcess } from '../../faults/fleet-process.ts';
import type { LoadTarget } from './load.ts';

/** A DISTRIBUTED_STORAGE_CONFIG: location -> [Quay driver name, parameters]. */
export type StorageConfig = Record<string, readonly [string, Record<string, unknown>]>;

/**
 * Upload leases (PUSH_TEMP_TAG_EXPIRATION_SEC): short, so GC collects the blobs of pushes a fault
 * broke off within the run, but longer than a push takes on a loaded machine (at load 40 a push of
 * three blobs and a manifest took more than 5 s, and GC rightly collected its blobs first).
 */
export const LEASE_SECONDS = 10;

/** GC works continuously: the sweep every second, short upload leases. */
const GC_CONFIG = { GARBAGE_COLLECTION_FREQUENCY: 1, PUSH_TEMP_TAG_EXPIRATION_SEC: LEASE_SECONDS };

export interface FleetSpec {
  readonly name: string;
  readonly dbUri: string;
  readonly redisUrl: string;
  readonly httpPort: number;
  readonly metricsPort: number;
  /** DISTRIBUTED_STORAGE_CONFIG (one location, `default`). */
  readonly storage: StorageConfig;
  readonly user: string;
  readonly password: string;
}

/** One running fleet under test. */
export interface FleetUnderTest {
  readonly spec: FleetSpec;
  readonly process: FleetProcess;
  /** What the load drives: its base URL, repositories and tokens. */
  readonly target: LoadTarget;
  /** The repository recovery probes push to (not one of the load's). */
  readonly probeRepository: string;
}

export interface FleetPool {
  readonly all: FleetUnderTest[];
  start(spec: FleetSpec): Promise<FleetUnderTest>;
  stopAll(): Promise<void>;
}

/** An empty pool. */
export function createFleetPool(): FleetPool {
  const all: FleetUnderTest[] = [];
  return {
    all,
    async start(spec) {
      const process = await startFleetProcess({
        dbUri: spec.dbUri, redisUrl: spec.redisUrl, httpPort: spec.httpPort, metricsPort: spec.metricsPort,
        config: { ...GC_CONFIG, DISTRIBUTED_STORAGE_CONFIG: spec.storage, DISTRIBUTED_STORAGE_PREFERENCE: ['default'] },
        // The run ends by stopping the fleets; it need not wait for GC jobs in flight to finish.
        env: { QUAYFLEET_SHUTDOWN_DEADLINE_SECONDS: '3' },
      });
      try {
        await createUser(spec.dbUri, spec.user, spec.password);
      } catch (error) {
        await process.stop(5000);
        throw error;
      }
      const service = `127.0.0.1:${spec.httpPort}`;
      const fleet: FleetUnderTest = {
        spec, process,
        probeRepository: `${spec.user}/probe`,
        target: {
          name: spec.name, base: process.base,
          repositories: [0, 1, 2].map((i) => `${spec.user}/app${i}`),
          token: (repository) => pushToken(process.base, service, spec.user, spec.password, repository),
        },
      };
      all.push(fleet);
      return fleet;
    },
    async stopAll() {
      await Promise.all(all.map((f) => f.process.stop(15_000)));
    },
  };
}
