/** The config surface: `loadConfig()` once at boot, then pass the typed `Config` down. */
export { loadConfig, parseConfig, ConfigError, type Config, type ConfigIssue } from './load.ts';
export { quayConfigSchema, type QuayConfig } from './schema.ts';
export { parseDurationSeconds } from './durations.ts';
