/** The config surface: `loadConfig()` once at boot, then pass the typed `Config` down. */
export {
  loadConfig, parseConfig, readConfigYaml, configFilePath, toValidationErrors, ConfigError, type Config, type ConfigIssue, type ValidationError,
} from './load.ts';
export { validateQuayConfig, requiredKeyIssues, storageLocationIssues, type ValidationReport, type LocationCheck } from './validate.ts';
export { redactConfig } from './redact.ts';
export * from './image-registry.ts';
export { quayConfigSchema, type QuayConfig } from './schema.ts';
export { parseDurationSeconds } from './durations.ts';
