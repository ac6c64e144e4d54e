/**
 * Loads the one validated, typed Config of a process: a Quay config.yaml (path from
 * QUAYFLEET_CONFIG, else conf/stack/config.yaml when it exists, else built-in defaults) plus the
 * environment overrides that differ per pod. Every problem is collected and reported at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDurationSeconds } from './durations.ts';
import { configErrorMap, quayConfigSchema, type QuayConfig } from './schema.ts';
import {
  imageRegistrySettings, imageRegistrySpecSchema, mapStorageSpec, SPEC_LOCATION, type ImageRegistrySettings, type ImageRegistrySpec,
} from './image-registry.ts';
import { fieldGroupOf } from './field-groups.ts';

/** The process configuration: Quay's keys as operators wrote them, plus per-pod settings. */
export interface Config {
  /** Quay keys with Quay's defaults applied (storage defaults filled in). */
  readonly quay: QuayConfig & {
    DISTRIBUTED_STORAGE_CONFIG: Record<string, [string, Record<string, unknown>]>;
    DISTRIBUTED_STORAGE_PREFERENCE: string[];
  };
  /** Where the config came from (a file path, or "built-in defaults"). */
  readonly source: string;
  /** Postgres URL (DB_URI from the environment, else from config.yaml); undefined means embedded. */
  readonly dbUri: string | undefined;
  /** Redis URL (REDIS_URL, else BUILDLOGS_REDIS, else USER_EVENTS_REDIS); undefined means embedded. */
  readonly redisUrl: string | undefined;
  /** Per-pod override of the storage preference (QUAY_DISTRIBUTED_STORAGE_PREFERENCE). */
  readonly storagePreferenceOverride: string | undefined;
  readonly httpPort: number;
  readonly metricsPort: number;
  /** Serve the queue console (bull-board) under /admin/queues to superusers (QUAYFLEET_QUEUE_CONSOLE); off by default. */
  readonly queueConsole: boolean;
  /** Jobs at once per worker in a `worker <name>` pod (QUAYFLEET_WORKER_CONCURRENCY); undefined: each worker's own. */
  readonly workerConcurrency: number | undefined;
  /** Root of the embedded defaults (local storage, embedded Postgres data). */
  readonly dataDir: string;
  /** DEFAULT_TAG_EXPIRATION in seconds. */
  readonly defaultTagExpirationSeconds: number;
  /** TAG_EXPIRATION_OPTIONS in seconds, in the order given. */
  readonly tagExpirationOptionsSeconds: number[];
  /** The OpenShift image-registry `spec` block, when config.yaml has one (storage already mapped into DISTRIBUTED_STORAGE_CONFIG). */
  readonly imageRegistrySpec: ImageRegistrySpec | undefined;
  /** Management states and GC pruning mode (Managed, storage Managed without a spec). */
  readonly imageRegistry: ImageRegistrySettings;
  /** Problems that do not stop the process (logged at boot, listed by `config validate`). */
  readonly warnings: ConfigIssue[];
  /** QUAYFLEET_CONFIG_PASSWORD: the config secret (Basic `quayconfig:<secret>`) of the config API. */
  readonly configPassword: string | undefined;
}

/** One problem with one key. */
export interface ConfigIssue {
  readonly key: string;
  readonly message: string;
  /** The message is in Quay's words and is shown as it is (otherwise the key is put in front unless it names it). */
  readonly exact?: boolean;
}

/**
 * Thrown by loadConfig with every issue found; its message lists them one per line. `warnings`
 * are the problems found beside them that would not have stopped the process on their own.
 */
export class ConfigError extends Error {
  constructor(readonly source: string, readonly issues: ConfigIssue[], readonly warnings: ConfigIssue[] = []) {
    super(`invalid configuration (${source}):\n${issues.map((i) => `  ${i.key}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** An issue in the shape of Quay's config validation (`{FieldGroup, Tags, Message}`). */
export interface ValidationError {
  readonly FieldGroup: string;
  readonly Tags: string[];
  readonly Message: string;
}

/** Quay's shape of `issues`, sorted by field group as Quay's validator lists them. */
export function toValidationErrors(issues: readonly ConfigIssue[]): ValidationError[] {
  const seen = new Set<string>();
  return issues
    .map((i) => ({ FieldGroup: fieldGroupOf(i.key), Tags: [i.key], Message: quayMessage(i) }))
    .filter((e) => !seen.has(`${e.FieldGroup}\0${e.Message}`) && seen.add(`${e.FieldGroup}\0${e.Message}`))
    .sort((a, b) => (a.FieldGroup < b.FieldGroup ? -1 : a.FieldGroup > b.FieldGroup ? 1 : 0));
}

/** Messages that already name their key (Quay's own, the spec's) stay as they are; the others get it in front. */
function quayMessage(issue: ConfigIssue): string {
  const root = issue.key.split('.')[0]!;
  return issue.exact || issue.message.startsWith(root) ? issue.message : `${issue.key}: ${issue.message}`;
}

const DEFAULT_CONFIG_PATH = 'conf/stack/config.yaml';

/** A TCP port from the environment; `min` 0 allows "any free port" (tests). */
function port(min: number, fallback: number) {
  const expected = `expected a port number from ${min} to 65535, e.g. ${fallback}`;
  return z.string().regex(/^\s*\d+\s*$/, { error: expected }).transform(Number)
    .refine((n) => n >= min && n <= 65535, { error: expected }).default(fallback);
}

const envSchema = z.object({
  DB_URI: z.string().min(1).optional(),
  // The forms are parsed (and explained) by shared/runtime/redis.ts: a server, a Cluster, a Sentinel master.
  REDIS_URL: z.string().regex(/^rediss?(?:\+(?:cluster|sentinel))?:\/\/\S+$/, {
    error: 'expected redis://HOST:PORT, redis+cluster://HOST:PORT,HOST:PORT or redis+sentinel://HOST:PORT,HOST:PORT/MASTER (rediss for TLS)',
  }).optional(),
  QUAY_DISTRIBUTED_STORAGE_PREFERENCE: z.string().min(1).optional(),
  QUAYFLEET_HTTP_PORT: port(1, 8080),
  QUAYFLEET_METRICS_PORT: port(0, 9091),
  QUAYFLEET_DATA_DIR: z.string().min(1).default('./data'),
  QUAYFLEET_QUEUE_CONSOLE: z.enum(['true', 'false'], { error: 'expected true or false' }).default('false').transform((v) => v === 'true'),
  QUAYFLEET_WORKER_CONCURRENCY: z.string().regex(/^\s*[1-9]\d{0,3}\s*$/, { error: 'expected a whole number of jobs from 1 to 9999, e.g. 4' }).transform(Number).optional(),
  QUAYFLEET_CONFIG_PASSWORD: z.string().min(8, { error: 'expected at least 8 characters' }).optional(),
});

/** Reads the config file and environment and returns the Config, or throws ConfigError. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const { raw, source, issues } = readConfigFile(env, cwd);
  return parseConfig(raw, env, source, issues);
}

/** Validates an already-read config object (tests and tools); throws ConfigError. */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = {}, source = 'inline', preIssues: ConfigIssue[] = []): Config {
  const issues = [...preIssues];
  const parseOptions = { error: configErrorMap, reportInput: true } as const;
  const quay = quayConfigSchema.safeParse(raw ?? {}, parseOptions);
  const envParsed = envSchema.safeParse(emptyToUndefined(env), parseOptions);
  if (!quay.success) issues.push(...toIssues(quay.error));
  if (!envParsed.success) issues.push(...toIssues(envParsed.error));
  // The cross-key storage checks run on the raw values too, so one pass reports every error.
  const dataDir = path.resolve(envParsed.data?.QUAYFLEET_DATA_DIR ?? String(env.QUAYFLEET_DATA_DIR || './data'));
  const spec = specOf(raw, env, issues);
  const warnings: ConfigIssue[] = [...spec.warnings];
  const rawStorage = storageKeysOf(spec.location ? { ...(raw as object), DISTRIBUTED_STORAGE_CONFIG: { [SPEC_LOCATION]: spec.location } } : raw, dataDir);
  issues.push(...checkStorage(rawStorage.config, rawStorage.preference, rawStorage.defaults, envParsed.data?.QUAY_DISTRIBUTED_STORAGE_PREFERENCE));
  if (!quay.success || !envParsed.success || issues.length > 0) throw new ConfigError(source, issues, warnings);

  const q = quay.data;
  const e = envParsed.data;
  const storageConfig = spec.location ? { [SPEC_LOCATION]: spec.location } : q.DISTRIBUTED_STORAGE_CONFIG ?? defaultStorage(dataDir);
  const preference = q.DISTRIBUTED_STORAGE_PREFERENCE ?? Object.keys(storageConfig);

  // Without SERVER_HOSTNAME the registry is reached on this machine's HTTP port.
  const serverHostname = hasKey(raw, 'SERVER_HOSTNAME') ? q.SERVER_HOSTNAME : `localhost:${e.QUAYFLEET_HTTP_PORT}`;
  return {
    quay: { ...q, SERVER_HOSTNAME: serverHostname, DISTRIBUTED_STORAGE_CONFIG: storageConfig as Record<string, [string, Record<string, unknown>]>, DISTRIBUTED_STORAGE_PREFERENCE: preference },
    source,
    dbUri: e.DB_URI ?? q.DB_URI,
    redisUrl: e.REDIS_URL ?? redisUrlOf(q.BUILDLOGS_REDIS) ?? redisUrlOf(q.USER_EVENTS_REDIS),
    storagePreferenceOverride: e.QUAY_DISTRIBUTED_STORAGE_PREFERENCE,
    httpPort: e.QUAYFLEET_HTTP_PORT,
    metricsPort: e.QUAYFLEET_METRICS_PORT,
    queueConsole: e.QUAYFLEET_QUEUE_CONSOLE,
    workerConcurrency: e.QUAYFLEET_WORKER_CONCURRENCY,
    dataDir,
    defaultTagExpirationSeconds: parseDurationSeconds(q.DEFAULT_TAG_EXPIRATION)!,
    tagExpirationOptionsSeconds: q.TAG_EXPIRATION_OPTIONS.map((o) => parseDurationSeconds(o)!),
    imageRegistrySpec: spec.spec,
    imageRegistry: imageRegistrySettings(spec.spec),
    warnings,
    configPassword: e.QUAYFLEET_CONFIG_PASSWORD,
  };
}

/**
 * The `spec:` block (the operator resource's), parsed, with spec.storage mapped to a location.
 * Its errors go into `issues`; spec.storage beside DISTRIBUTED_STORAGE_CONFIG is one of them (two
 * storage configs, and which one wins would be a guess).
 */
function specOf(raw: unknown, env: NodeJS.ProcessEnv, issues: ConfigIssue[]): { spec?: ImageRegistrySpec; location?: [string, Record<string, unknown>]; warnings: ConfigIssue[] } {
  if (!hasKey(raw, 'spec')) return { warnings: [] };
  const record = raw as Record<string, unknown>;
  const parsed = imageRegistrySpecSchema.safeParse(record.spec ?? {}, { error: configErrorMap, reportInput: true });
  if (!parsed.success) {
    issues.push(...toIssues(parsed.error).map((i) => ({ ...i, key: `spec.${i.key}`.replace(/\.\(root\)$/, '') })));
    return { warnings: [] };
  }
  const spec = parsed.data;
  if (spec.storage && hasKey(raw, 'DISTRIBUTED_STORAGE_CONFIG')) {
    issues.push({ key: 'spec.storage', message: 'spec.storage and DISTRIBUTED_STORAGE_CONFIG are both set: configure storage in one of them' });
    return { spec, warnings: [] };
  }
  const hostname = typeof record.SERVER_HOSTNAME === 'string' ? record.SERVER_HOSTNAME : `localhost:${env.QUAYFLEET_HTTP_PORT || 8080}`;
  const secret = [record.DATABASE_SECRET_KEY, record.SECRET_KEY].find((v): v is string => typeof v === 'string' && v !== '');
  const mapped = mapStorageSpec(spec, { env, serverHostname: hostname, secret });
  issues.push(...mapped.errors);
  return { spec, location: mapped.location, warnings: mapped.warnings };
}

/** The config file a process reads: QUAYFLEET_CONFIG, else conf/stack/config.yaml (relative to `cwd`). */
export function configFilePath(env: NodeJS.ProcessEnv, cwd: string): { file: string; explicit: boolean } {
  const explicit = env.QUAYFLEET_CONFIG;
  return { file: path.resolve(cwd, explicit || DEFAULT_CONFIG_PATH), explicit: Boolean(explicit) };
}

function readConfigFile(env: NodeJS.ProcessEnv, cwd: string): { raw: unknown; source: string; issues: ConfigIssue[] } {
  const { file, explicit } = configFilePath(env, cwd);
  if (!fs.existsSync(file)) {
    if (explicit) return { raw: {}, source: file, issues: [{ key: 'QUAYFLEET_CONFIG', message: `file not found: ${file}` }] };
    return { raw: {}, source: 'built-in defaults', issues: [] };
  }
  return { ...readConfigYaml(file), source: file };
}

/** Reads a config.yaml: its mapping, or an issue saying why it cannot be used. */
export function readConfigYaml(file: string): { raw: unknown; issues: ConfigIssue[] } {
  try {
    const raw: unknown = parseYaml(fs.readFileSync(file, 'utf8'));
    if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw))) {
      return { raw: {}, issues: [{ key: '(file)', message: 'config.yaml must be a mapping of keys to values' }] };
    }
    return { raw: raw ?? {}, issues: [] };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { raw: {}, issues: [{ key: '(file)', message: code ? `cannot read ${file} (${code})` : `not valid YAML: ${(error as Error).message}` }] };
  }
}

function checkStorage(
  storage: Record<string, unknown>, preference: string[], defaults: string[], override: string | undefined,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const known = Object.keys(storage);
  if (known.length === 0) {
    issues.push({ key: 'DISTRIBUTED_STORAGE_CONFIG', message: 'DISTRIBUTED_STORAGE_CONFIG must contain at least one storage location.' });
  }
  for (const name of preference) {
    if (!known.includes(name)) issues.push({ key: 'DISTRIBUTED_STORAGE_PREFERENCE', message: `unknown storage location "${name}" (known: ${known.join(', ')})` });
  }
  for (const name of defaults) {
    if (!known.includes(name)) issues.push({ key: 'DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS', message: `unknown storage location "${name}" (known: ${known.join(', ')})` });
  }
  if (override !== undefined && !known.includes(override)) {
    issues.push({ key: 'QUAY_DISTRIBUTED_STORAGE_PREFERENCE', message: `unknown storage location "${override}" (known: ${known.join(', ')})` });
  }
  return issues;
}

function redisUrlOf(location: { host: string; port: number; password?: string; ssl?: boolean } | undefined): string | undefined {
  if (!location) return undefined;
  const auth = location.password ? `:${encodeURIComponent(location.password)}@` : '';
  return `${location.ssl ? 'rediss' : 'redis'}://${auth}${location.host}:${location.port}`;
}

/** The embedded default: one LocalStorage location under the data directory. */
function defaultStorage(dataDir: string): Record<string, [string, Record<string, unknown>]> {
  return { default: ['LocalStorage', { storage_path: path.join(dataDir, 'storage') }] };
}

/** The storage keys as written, for the cross-key checks (wrongly typed values count as absent). */
function storageKeysOf(raw: unknown, dataDir: string): { config: Record<string, unknown>; preference: string[]; defaults: string[] } {
  const record = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const config = record.DISTRIBUTED_STORAGE_CONFIG;
  const storage = typeof config === 'object' && config !== null && !Array.isArray(config) ? config as Record<string, unknown> : defaultStorage(dataDir);
  const strings = (value: unknown): string[] | undefined => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined);
  return {
    config: storage,
    preference: strings(record.DISTRIBUTED_STORAGE_PREFERENCE) ?? Object.keys(storage),
    defaults: strings(record.DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS) ?? [],
  };
}

function hasKey(raw: unknown, key: string): boolean {
  return typeof raw === 'object' && raw !== null && Object.hasOwn(raw, key);
}

/** One issue per wrong value: its key, the value as written, and what was expected. */
function toIssues(error: z.ZodError): ConfigIssue[] {
  return error.issues.map((issue) => ({
    key: issue.path.map(String).join('.') || '(root)',
    message: `${showValue((issue as { input?: unknown }).input)} is not valid; ${issue.message}`,
  }));
}

/** The value as the operator wrote it, shortened: a long list or mapping is not repeated in full. */
function showValue(value: unknown): string {
  if (value === undefined) return '(missing)';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Kubernetes manifests often set empty strings for unset variables; treat them as unset. */
function emptyToUndefined(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === '' ? undefined : v]));
}
