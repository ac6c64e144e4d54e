/**
 * Quay's config validation (CFG-11): the same checks the loader runs at boot, plus the keys Quay's
 * config tool requires, answered as Quay's array of `{FieldGroup, Tags, Message}` (`[]` when the
 * config is valid). An empty config gives Quay's five errors, in Quay's words:
 *
 *   Database            DB_URI                      DB_URI is required.
 *   DistributedStorage  DISTRIBUTED_STORAGE_CONFIG  DISTRIBUTED_STORAGE_CONFIG must contain at least one storage location.
 *   HostSettings        SERVER_HOSTNAME             SERVER_HOSTNAME is required
 *   HostSettings        SERVER_HOSTNAME             SERVER_HOSTNAME must be of type Hostname
 *   Redis               BUILDLOGS_REDIS             BUILDLOGS_REDIS is required
 *
 * The environment counts as a pod's would: DB_URI and REDIS_URL there satisfy DB_URI and
 * BUILDLOGS_REDIS, and spec.storage takes its credentials from REGISTRY_STORAGE_*.
 */
import { ConfigError, parseConfig, toValidationErrors, type Config, type ConfigIssue, type ValidationError } from './load.ts';

/** A host name or address with an optional port (`quay.example.com`, `10.0.0.1:8443`, `[::1]:8080`). */
const HOSTNAME = /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/;

/** Whether `value` is a Quay Hostname. */
export function isHostname(value: unknown): boolean {
  return typeof value === 'string' && value.length <= 253 && HOSTNAME.test(value);
}

/** The keys Quay's config tool requires, missing or mistyped in `raw` (and not supplied by `env`). */
export function requiredKeyIssues(raw: unknown, env: NodeJS.ProcessEnv): ConfigIssue[] {
  const record = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const issues: ConfigIssue[] = [];
  if (!record.DB_URI && !env.DB_URI) issues.push({ key: 'DB_URI', message: 'DB_URI is required.' });
  const storage = record.DISTRIBUTED_STORAGE_CONFIG;
  const spec = record.spec as { storage?: unknown } | undefined;
  const hasLocations = typeof storage === 'object' && storage !== null && Object.keys(storage).length > 0;
  if (!hasLocations && !(typeof spec === 'object' && spec !== null && spec.storage)) {
    issues.push({ key: 'DISTRIBUTED_STORAGE_CONFIG', message: 'DISTRIBUTED_STORAGE_CONFIG must contain at least one storage location.' });
  }
  if (record.SERVER_HOSTNAME === undefined || record.SERVER_HOSTNAME === null || record.SERVER_HOSTNAME === '') {
    issues.push({ key: 'SERVER_HOSTNAME', message: 'SERVER_HOSTNAME is required' });
  }
  if (!isHostname(record.SERVER_HOSTNAME)) issues.push({ key: 'SERVER_HOSTNAME', message: 'SERVER_HOSTNAME must be of type Hostname' });
  if (!record.BUILDLOGS_REDIS && !env.REDIS_URL) issues.push({ key: 'BUILDLOGS_REDIS', message: 'BUILDLOGS_REDIS is required' });
  return issues;
}

/**
 * What is wrong with one storage location's driver and parameters (the storage layer's
 * `storageParamIssues`, handed in: config sits below storage and imports none of it).
 */
export type LocationCheck = (driver: string, params: Record<string, unknown>) => string[];

export function storageLocationIssues(config: Config, check: LocationCheck): ConfigIssue[] {
  return Object.entries(config.quay.DISTRIBUTED_STORAGE_CONFIG).flatMap(([location, [driver, params]]) =>
    check(driver, params).map((message) => ({ key: `DISTRIBUTED_STORAGE_CONFIG.${location}`, message: `DISTRIBUTED_STORAGE_CONFIG.${location}: ${message}` })));
}

/** The outcome of one validation: Quay's error array, and warnings in the same shape. */
export interface ValidationReport {
  readonly errors: ValidationError[];
  readonly warnings: ValidationError[];
  /** The parsed config when only required keys were missing or nothing was wrong. */
  readonly config?: Config;
}

/** Validates a config as Quay's config tool does (strict: Quay's required keys are required). */
export function validateQuayConfig(raw: unknown, env: NodeJS.ProcessEnv = {}, checkLocation?: LocationCheck): ValidationReport {
  const issues: ConfigIssue[] = [];
  let warnings: ConfigIssue[] = [];
  let config: Config | undefined;
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) {
    return { errors: toValidationErrors([{ key: '(root)', message: 'config.yaml must be a mapping of keys to values' }]), warnings: [] };
  }
  try {
    config = parseConfig(raw ?? {}, env, 'validation');
    warnings = config.warnings;
    if (checkLocation) issues.push(...storageLocationIssues(config, checkLocation));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    issues.push(...error.issues);
    // Errors elsewhere do not hide the warnings: one run lists both.
    warnings = error.warnings;
  }
  issues.push(...requiredKeyIssues(raw, env));
  return { errors: toValidationErrors(issues), warnings: toValidationErrors(warnings), config: issues.length === 0 ? config : undefined };
}
