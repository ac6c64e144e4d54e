/**
 * The explicit map from Quay's driver names (the first element of each `DISTRIBUTED_STORAGE_CONFIG`
 * entry) to factories. Parameters are validated with each driver's zod schema; errors name the
 * parameter and never echo its value, since many parameters are credentials.
 */
import type { z } from 'zod';
import { instrument } from '../instrumented.ts';
import type { ObjectStore } from '../types.ts';
import { AzureStore, azureParamsSchema } from './azure.ts';
import { createGcsStore, gcsParamsSchema } from './gcs.ts';
import { LocalStorage, localParamsSchema } from './local.ts';
import { S3Store } from './s3.ts';
import { radosgwParamsSchema, radosgwSettings, s3ParamsSchema, s3Settings } from './s3-params.ts';

interface DriverEntry<S extends z.ZodType> {
  readonly schema: S;
  readonly create: (params: z.infer<S>, env: NodeJS.ProcessEnv) => ObjectStore;
}

function entry<S extends z.ZodType>(schema: S, create: (params: z.infer<S>, env: NodeJS.ProcessEnv) => ObjectStore): DriverEntry<S> {
  return { schema, create };
}

const DRIVERS = {
  LocalStorage: entry(localParamsSchema, (params) => new LocalStorage(params)),
  S3Storage: entry(s3ParamsSchema, (params, env) => new S3Store(s3Settings(params, env))),
  RadosGWStorage: entry(radosgwParamsSchema, (params, env) => new S3Store(radosgwSettings(params, env))),
  GoogleCloudStorage: entry(gcsParamsSchema, (params, env) => createGcsStore(params, env)),
  AzureStorage: entry(azureParamsSchema, (params, env) => new AzureStore(params, env)),
} satisfies Record<string, DriverEntry<z.ZodType>>;

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
 * metrics. Throws `StorageConfigError` for an unknown driver or bad parameters.
 */
export function createObjectStore(driverName: string, params: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): ObjectStore {
  if (!Object.hasOwn(DRIVERS, driverName)) {
    throw new StorageConfigError(driverName, [`unknown storage driver (known: ${DRIVER_NAMES.join(', ')})`]);
  }
  const driver: DriverEntry<z.ZodType> = DRIVERS[driverName as keyof typeof DRIVERS];
  const parsed = driver.schema.safeParse(params ?? {});
  if (!parsed.success) {
    throw new StorageConfigError(driverName, parsed.error.issues.map((issue) => describeIssue(issue, params ?? {})));
  }
  try {
    return instrument(driver.create(parsed.data, env));
  } catch (error) {
    // Rules spanning several parameters and the environment (for example "a key or a SAS token").
    throw new StorageConfigError(driverName, [error instanceof Error ? error.message : String(error)]);
  }
}

// zod's default messages never include the input value; only the path and the expectation are shown.
function describeIssue(issue: z.core.$ZodIssue, params: Record<string, unknown>): string {
  const name = issue.path.length > 0 ? issue.path.join('.') : '(parameters)';
  const value = issue.path.reduce<unknown>((node, part) => (node as Record<PropertyKey, unknown> | undefined)?.[part], params);
  if (issue.code === 'invalid_type' && value === undefined) return `missing required parameter "${name}"`;
  return `invalid parameter "${name}": ${issue.message}`;
}
