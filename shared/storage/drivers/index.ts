/**
 * The explicit map from Quay's driver names (the first element of each `DISTRIBUTED_STORAGE_CONFIG`
 * entry) to factories. Parameters are validated with each driver's zod schema; errors name the
 * parameter and never echo its value, since many parameters are credentials.
 */
import type { z } from 'zod';
import { instrument } from '../instrumented.ts';
import { DEFAULT_STORAGE_TIMEOUTS, type StorageTimeouts } from '../timeouts.ts';
import type { ObjectStore } from '../types.ts';
import { azureParamsSchema, type AzureParams } from './azure-params.ts';
import { gcsParamsSchema, type GcsParams } from './gcs-params.ts';
import { LocalStorage, localParamsSchema } from './local.ts';
import { radosgwParamsSchema, radosgwSettings, s3ParamsSchema, s3Settings } from './s3-params.ts';
import { swiftParamsSchema, swiftSettings } from './swift-params.ts';

type Factory<P> = (params: P, env: NodeJS.ProcessEnv, timeouts: StorageTimeouts) => ObjectStore;

/** LocalStorage needs no SDK: its factory is always loaded. */
const createLocal: Factory<z.infer<typeof localParamsSchema>> = (params) => new LocalStorage(params);

/**
 * A driver: its parameter schema (always loaded, so any configuration validates) and a loader of
 * its factory. The cloud drivers' SDKs are imported only when a location uses them: together they
 * cost a pod about 51 MiB of RSS and 0.9 s of start-up, and most registries use one of them.
 */
interface DriverEntry<S extends z.ZodType> {
  readonly schema: S;
  readonly load: () => Promise<Factory<z.infer<S>>>;
}

function entry<S extends z.ZodType>(schema: S, load: () => Promise<Factory<z.infer<S>>>): DriverEntry<S> {
  return { schema, load };
}

const DRIVERS = {
  LocalStorage: entry(localParamsSchema, async () => createLocal),
  S3Storage: entry(s3ParamsSchema, async () => {
    const { S3Store } = await import('./s3.ts');
    return (params, env, timeouts) => new S3Store(s3Settings(params, env), timeouts);
  }),
  RadosGWStorage: entry(radosgwParamsSchema, async () => {
    const { S3Store } = await import('./s3.ts');
    return (params, env, timeouts) => new S3Store(radosgwSettings(params, env), timeouts);
  }),
  GoogleCloudStorage: entry(gcsParamsSchema, async () => {
    const { createGcsStore } = await import('./gcs.ts');
    return (params: GcsParams, env, timeouts) => createGcsStore(params, env, timeouts);
  }),
  AzureStorage: entry(azureParamsSchema, async () => {
    const { AzureStore } = await import('./azure.ts');
    return (params: AzureParams, env, timeouts) => new AzureStore(params, env, timeouts);
  }),
  SwiftStorage: entry(swiftParamsSchema, async () => {
    const { SwiftStore } = await import('./swift.ts');
    return (params, env, timeouts) => new SwiftStore(swiftSettings(params, env), timeouts);
  }),
} satisfies Record<string, DriverEntry<z.ZodType>>;

type DriverName = keyof typeof DRIVERS;

/** Factories of the drivers loaded so far. */
const loaded = new Map<string, Factory<never>>([['LocalStorage', createLocal]]);

/**
 * Loads the drivers named (all known drivers by default; unknown names are left for
 * createObjectStore to report). `createDistributedStorage` loads what its configuration names;
 * call this before `createObjectStore` with another driver than LocalStorage.
 */
export async function loadStorageDrivers(names: readonly string[] = DRIVER_NAMES): Promise<void> {
  for (const name of new Set(names)) {
    if (loaded.has(name) || !Object.hasOwn(DRIVERS, name)) continue;
    loaded.set(name, await DRIVERS[name as DriverName].load() as Factory<never>);
  }
}

/** Quay's driver names this build knows. */
export const DRIVER_NAMES = Object.keys(DRIVERS) as readonly (keyof typeof DRIVERS)[];

/** Thrown for an unknown driver name or invalid parameters; `issues` name each bad parameter. */
export class StorageConfigError extends Error {
  constructor(readonly driver: string, readonly issues: readonly string[]) {
    super(`${driver}: ${issues.join('; ')}`);
    this.name = 'StorageConfigError';
  }
}

/**
 * Builds the store for one location: validates `params` against the driver's schema (credentials
 * may also come from `env`, as each driver documents) and wraps the driver with validation and
 * metrics, its requests bounded by `timeouts` (LocalStorage has none). Throws `StorageConfigError`
 * for an unknown driver or bad parameters.
 */
export function createObjectStore(
  driverName: string, params: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env, timeouts: StorageTimeouts = DEFAULT_STORAGE_TIMEOUTS,
): ObjectStore {
  if (!Object.hasOwn(DRIVERS, driverName)) {
    throw new StorageConfigError(driverName, [`unknown storage driver (known: ${DRIVER_NAMES.join(', ')})`]);
  }
  const driver: DriverEntry<z.ZodType> = DRIVERS[driverName as DriverName];
  const parsed = driver.schema.safeParse(params ?? {});
  if (!parsed.success) {
    throw new StorageConfigError(driverName, parsed.error.issues.map((issue) => describeIssue(issue, params ?? {})));
  }
  const create = loaded.get(driverName) as Factory<unknown> | undefined;
  // A programming error, not a configuration one: the caller skipped loadStorageDrivers.
  if (!create) throw new Error(`storage driver ${driverName} is not loaded: await loadStorageDrivers(['${driverName}']) first`);
  try {
    return instrument(create(parsed.data, env, timeouts));
  } catch (error) {
    // Rules spanning several parameters and the environment (for example "a key or a SAS token").
    throw new StorageConfigError(driverName, [error instanceof Error ? error.message : String(error)]);
  }
}

/**
 * What is wrong with one location's `[driver, params]`, without building it or loading any SDK
 * (config validation): an unknown driver, or each bad parameter; empty when the schema accepts it.
 */
export function storageParamIssues(driverName: string, params: unknown): string[] {
  if (!Object.hasOwn(DRIVERS, driverName)) return [`unknown storage driver ${driverName} (known: ${DRIVER_NAMES.join(', ')})`];
  const record = typeof params === 'object' && params !== null ? params as Record<string, unknown> : {};
  const parsed = (DRIVERS[driverName as DriverName].schema as z.ZodType).safeParse(record);
  return parsed.success ? [] : parsed.error.issues.map((issue) => describeIssue(issue, record));
}

// zod's default messages never include the input value; only the path and the expectation are shown.
function describeIssue(issue: z.core.$ZodIssue, params: Record<string, unknown>): string {
  const name = issue.path.length > 0 ? issue.path.join('.') : '(parameters)';
  const value = issue.path.reduce<unknown>((node, part) => (node as Record<PropertyKey, unknown> | undefined)?.[part], params);
  if (issue.code === 'invalid_type' && value === undefined) return `missing required parameter "${name}"`;
  return `invalid parameter "${name}": ${issue.message}`;
}
