/**
 * Distributed storage, Quay's geo-replication model: named locations, each one object store; an
 * ordered preference (`DISTRIBUTED_STORAGE_PREFERENCE`, overridden per pod by
 * `QUAY_DISTRIBUTED_STORAGE_PREFERENCE`) deciding where pushes write and pulls read first; and the
 * locations every blob must reach (`DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS`).
 *
 * It never touches the database: callers pass the locations holding a blob (its placements, from
 * `imagestorageplacement`) and record new placements themselves.
 */
import type { Readable } from 'node:stream';
import { NotFoundError, StorageError, messageOf } from './errors.ts';
import { blobKey } from './keys.ts';
import { createObjectStore, loadStorageDrivers } from './drivers/index.ts';
import type { StorageTimeouts } from './timeouts.ts';
import type { ByteRange, ObjectStore } from './types.ts';

/** What `DistributedStorage` is built from. */
export interface DistributedStorageOptions {
  /** Location name -> its store (`DISTRIBUTED_STORAGE_CONFIG`, already built). */
  readonly stores: Readonly<Record<string, ObjectStore>>;
  /** `DISTRIBUTED_STORAGE_PREFERENCE`: location names, most preferred first. */
  readonly preference: readonly string[];
  /** `DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS`: locations every blob is replicated to. */
  readonly defaultLocations?: readonly string[];
  /** `QUAY_DISTRIBUTED_STORAGE_PREFERENCE`: this pod's preferred location, put ahead of the list. */
  readonly preferenceOverride?: string;
}

/** Quay's parsed storage keys, as `shared/config` hands them over. */
export interface DistributedStorageConfig {
  readonly DISTRIBUTED_STORAGE_CONFIG: Readonly<Record<string, readonly [string, Record<string, unknown>]>>;
  readonly DISTRIBUTED_STORAGE_PREFERENCE: readonly string[];
  readonly DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS?: readonly string[];
}

/** An open blob read and the location it comes from. */
export interface OpenedBlob {
  readonly stream: Readable;
  readonly location: string;
}

/**
 * Builds every location's store with `createObjectStore` and the DistributedStorage over them,
 * loading only the drivers the configuration names (a Local-only registry never loads a cloud SDK).
 * `timeouts`: the deadlines of this process's storage requests (`storageTimeouts`; a worker's by default).
 */
export async function createDistributedStorage(
  config: DistributedStorageConfig,
  options: { preferenceOverride?: string; env?: NodeJS.ProcessEnv; timeouts?: StorageTimeouts } = {},
): Promise<DistributedStorage> {
  await loadStorageDrivers(Object.values(config.DISTRIBUTED_STORAGE_CONFIG).map(([driver]) => driver));
  const stores: Record<string, ObjectStore> = {};
  for (const [location, [driver, params]] of Object.entries(config.DISTRIBUTED_STORAGE_CONFIG)) {
    try {
      stores[location] = createObjectStore(driver, params, options.env, options.timeouts);
    } catch (error) {
      throw new Error(`DISTRIBUTED_STORAGE_CONFIG.${location}: ${messageOf(error)}`, { cause: error });
    }
  }
  return new DistributedStorage({
    stores,
    preference: config.DISTRIBUTED_STORAGE_PREFERENCE,
    defaultLocations: config.DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS ?? [],
    preferenceOverride: options.preferenceOverride,
  });
}

/** The storage locations of one registry, with Quay's preference and replication rules. */
export class DistributedStorage {
  /** Every configured location name, in configuration order. */
  readonly locations: readonly string[];
  /** The effective preference: the override first, then `DISTRIBUTED_STORAGE_PREFERENCE`. */
  readonly preference: readonly string[];
  /** Where this pod writes new blobs. */
  readonly preferredLocation: string;
  /** `DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS`. */
  readonly defaultLocations: readonly string[];
  private readonly stores: Readonly<Record<string, ObjectStore>>;

  /** Throws when the preference, the override or the default locations name an unknown location. */
  constructor(options: DistributedStorageOptions) {
    this.stores = options.stores;
    this.locations = Object.keys(options.stores);
    if (this.locations.length === 0) throw new Error('DISTRIBUTED_STORAGE_CONFIG must contain at least one storage location.');
    this.checkKnown('DISTRIBUTED_STORAGE_PREFERENCE', options.preference);
    this.checkKnown('DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS', options.defaultLocations ?? []);
    const override = options.preferenceOverride;
    if (override !== undefined) this.checkKnown('QUAY_DISTRIBUTED_STORAGE_PREFERENCE', [override]);
    this.preference = unique([...(override === undefined ? [] : [override]), ...options.preference]);
    this.preferredLocation = this.preference[0] ?? (this.locations[0] as string);
    this.defaultLocations = unique(options.defaultLocations ?? []);
  }

  /** The store of `location`; throws for an unknown location. */
  store(location: string): ObjectStore {
    const store = this.stores[location];
    if (!store) throw new Error(`unknown storage location "${location}" (known: ${this.locations.join(', ')})`);
    return store;
  }

  /** The store new blobs are written to (`store(preferredLocation)`). */
  preferredStore(): ObjectStore {
    return this.store(this.preferredLocation);
  }

  /**
   * Locations a blob must end up in: the preferred one, the default locations, then `extra` (for
   * example a namespace's own replication targets), each once. Throws for an unknown extra.
   */
  requiredLocations(extra: readonly string[] = []): string[] {
    this.checkKnown('replication location', extra);
    return unique([this.preferredLocation, ...this.defaultLocations, ...extra]);
  }

  /** `placements` ordered by this pod's preference; locations outside the preference keep their order after it. */
  readOrder(placements: readonly string[]): string[] {
    const rank = (location: string): number => {
      const index = this.preference.indexOf(location);
      return index === -1 ? this.preference.length : index;
    };
    return unique(placements).filter((l) => l in this.stores).sort((a, b) => rank(a) - rank(b));
  }

  /**
   * Opens blob `digest` from the most preferred location among `placements`, falling back to the
   * next placement when opening fails in any way (missing, unreachable, or, with `expectedSize`, a
   * copy of the wrong size). Rejects with `NotFoundError` when no placement has it, and with a
   * `StorageError` carrying every failure when some location could not be read.
   */
  async openBlob(digest: string, placements: readonly string[], range?: ByteRange, options: { expectedSize?: number; signal?: AbortSignal } = {}): Promise<OpenedBlob> {
    const key = blobKey(digest);
    const failures: { location: string; error: unknown }[] = [];
    for (const location of this.readOrder(placements)) {
      const store = this.store(location);
      try {
        if (options.expectedSize !== undefined) {
          const { size } = await store.stat(key);
          if (size !== options.expectedSize) {
            throw new StorageError(`copy has ${size} bytes, expected ${options.expectedSize}`, { driver: store.driverName, operation: 'openBlob', key });
          }
        }
        return { stream: await store.get(key, range, options.signal), location };
      } catch (error) {
        failures.push({ location, error });
      }
    }
    const detail = failures.map((f) => `${f.location}: ${messageOf(f.error)}`).join('; ') || `no configured location among placements [${placements.join(', ')}]`;
    const context = { operation: 'openBlob', key, cause: new AggregateError(failures.map((f) => f.error), detail) };
    if (failures.every((f) => f.error instanceof NotFoundError)) throw new NotFoundError(`blob is in none of its placements (${detail})`, context);
    throw new StorageError(`no placement could be read (${detail})`, context);
  }

  /** Closes every location's store. */
  async close(): Promise<void> {
    await Promise.all(Object.values(this.stores).map((store) => store.close()));
  }

  private checkKnown(what: string, names: readonly string[]): void {
    const unknown = names.filter((name) => !(name in this.stores));
    if (unknown.length > 0) {
      throw new Error(`${what} names unknown storage location(s) ${unknown.map((n) => `"${n}"`).join(', ')} (known: ${this.locations.join(', ')})`);
    }
  }
}

function unique(names: readonly string[]): string[] {
  return [...new Set(names)];
}
