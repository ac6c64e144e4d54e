/**
 * The effective config.yaml of a process: Quay's keys with Quay's defaults filled in (CFG-12),
 * DB_URI as the environment overrides it, DISTRIBUTED_STORAGE_CONFIG as spec.storage maps it, and
 * the spec with its defaults. Secrets are still in it: callers pass it through `redactConfig`.
 */
import type { Config } from './load.ts';

/** Quay's config.yaml keys as this process runs with them. */
export function effectiveConfig(config: Config): Record<string, unknown> {
  const { imageRegistrySpec: spec } = config;
  return {
    // Quay's config tool shows these even when unset (CFG-12).
    AUTHENTICATION_TYPE: 'Database',
    AVATAR_KIND: 'local',
    BROWSER_API_CALLS_XHR_ONLY: false,
    EXTERNAL_TLS_TERMINATION: false,
    ...config.quay,
    DB_CONNECTION_ARGS: { autorollback: true, threadlocals: true, ...config.quay.DB_CONNECTION_ARGS },
    ...(config.dbUri ? { DB_URI: config.dbUri } : {}),
    ...(spec ? { spec: { ...spec, storage: spec.storage && { managementState: config.imageRegistry.storageManagementState, ...spec.storage } } } : {}),
  };
}
