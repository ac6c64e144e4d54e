/**
 * The online half of config validation (Quay's `config-tool validate --mode online`): beyond the
 * static checks, connect to what the config names, with its credentials, and report what fails as
 * `{FieldGroup, Tags, Message}` entries. Opt-in (`quayfleet config validate --connect`,
 * `POST /api/v1/config/validate?mode=online`): it reaches out to servers, and it may create the
 * bucket of a spec.storage location under storage managementState Managed, as the fleet does at
 * start, since only creating it proves the credentials may.
 *
 * | field group | check |
 * |---|---|
 * | Database | DB_URI connects and answers `SELECT 1` |
 * | Redis | BUILDLOGS_REDIS (or REDIS_URL) answers PING, after AUTH when it has a password |
 * | DistributedStorage | each location answers a listing with its credentials; a bucket a location may create is created when missing |
 *
 * Extra CA certificates (Quay's `extra_ca_certs/*` of the config bundle or directory) are trusted
 * by these checks where the connection takes a CA: Redis over TLS, and the S3-compatible and Swift
 * storage drivers. Where it does not (Postgres, Azure, Google Cloud Storage), a warning says so.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  parseConfig, toValidationErrors, validateQuayConfig, type Config, type ConfigIssue, type LocationCheck, type ValidationError, type ValidationReport,
} from '../config/index.ts';
import { createClient } from '../db/pool.ts';
import { createObjectStore, loadStorageDrivers } from '../storage/drivers/index.ts';
import { connectRedis, redact } from './redis.ts';

/** Options of one online validation. */
export interface ConnectionCheckOptions {
  /** Where credentials beside the config come from (REGISTRY_STORAGE_*, AWS_*, ...). */
  readonly env: NodeJS.ProcessEnv;
  /** PEM certificates to trust besides the system's, keyed by their name in the bundle (`extra_ca_certs/foo.crt`). */
  readonly extraCaCerts?: Readonly<Record<string, string>>;
  /** Per connection; default 10 s. */
  readonly timeoutMs?: number;
}

/** What the online checks found. */
export interface ConnectionReport {
  readonly errors: ConfigIssue[];
  readonly warnings: ConfigIssue[];
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** Drivers whose parameters take a CA bundle file, and the parameter's name. */
const CA_PARAM: Record<string, string> = { S3Storage: 'ca_bundle_file', RadosGWStorage: 'ca_bundle_file', SwiftStorage: 'ca_cert_path' };

/** Connects to the database, Redis and every storage location of `config`; resolves with what failed. */
export async function checkConnections(config: Config, options: ConnectionCheckOptions): Promise<ConnectionReport> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const certs = Object.entries(options.extraCaCerts ?? {});
  const bundle = certs.length > 0 ? writeBundle(certs.map(([, pem]) => pem)) : undefined;
  const warnings: ConfigIssue[] = [];
  try {
    const results = await Promise.all([
      config.dbUri ? checkDatabase(config.dbUri, timeoutMs) : [],
      config.redisUrl ? checkRedis(config.redisUrl, timeoutMs, certs.map(([, pem]) => pem)) : [],
      checkStorage(config, options.env, timeoutMs, bundle?.file),
    ]);
    if (bundle) warnings.push(...caWarnings(config, certs.map(([name]) => name)));
    return { errors: results.flat(), warnings };
  } finally {
    bundle?.remove();
  }
}

/**
 * Quay's validation in online mode: the static checks (`validateQuayConfig`), then, when the
 * config parses, the connection checks above; errors and warnings of both, grouped as Quay groups them.
 */
export async function validateQuayConfigOnline(
  raw: unknown, checkLocation: LocationCheck, options: ConnectionCheckOptions,
): Promise<ValidationReport> {
  const report = validateQuayConfig(raw, options.env, checkLocation);
  let config: Config;
  try {
    config = parseConfig(raw ?? {}, options.env, 'validation');
  } catch {
    return report;
  }
  // A location the static checks refused cannot be built; its error is already in the report.
  if (report.errors.some((e) => e.Tags.some((tag) => tag.startsWith('DISTRIBUTED_STORAGE_CONFIG.')))) return report;
  const online = await checkConnections(config, options);
  const byGroup = (a: ValidationError, b: ValidationError) => (a.FieldGroup < b.FieldGroup ? -1 : a.FieldGroup > b.FieldGroup ? 1 : 0);
  const errors = [...report.errors, ...toValidationErrors(online.errors)].sort(byGroup);
  return { errors, warnings: [...report.warnings, ...toValidationErrors(online.warnings)].sort(byGroup), config: errors.length === 0 ? report.config : undefined };
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const EXTRA_CA = /^extra_ca_certs\/[^/]+$/;

/** The extra CA certificates (PEM) directly in Quay's `extra_ca_certs` directory, keyed `extra_ca_certs/<file>`; none when it is absent. */
export function extraCaCertsIn(dir: string): Record<string, string> {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((name) => /\.(crt|pem|cert)$/i.test(name)).sort();
  } catch {
    return {};
  }
  return Object.fromEntries(names.map((name) => [`extra_ca_certs/${name}`, fs.readFileSync(path.join(dir, name), 'utf8')]));
}

/**
 * The `certs` of a Quay config bundle (`{"config.yaml": ..., "certs": {"extra_ca_certs/ca.crt": BASE64}}`,
 * values base64 as Quay's config tool sends them, or PEM text): the extra CA certificates it
 * carries, an error for one that holds no certificate, and a warning for every other entry
 * (`ssl.cert`, `ssl.key`, ...), which quayfleet does not use: its TLS ends in front of it.
 */
export function bundleCerts(certs: unknown): { extraCaCerts: Record<string, string>; errors: ConfigIssue[]; warnings: ConfigIssue[] } {
  const extraCaCerts: Record<string, string> = {};
  const errors: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  if (certs === undefined || certs === null) return { extraCaCerts, errors, warnings };
  if (typeof certs !== 'object' || Array.isArray(certs)) return { extraCaCerts, errors: [{ key: 'certs', message: 'certs must be a mapping of file names to their contents (base64 or PEM)' }], warnings };
  for (const [name, value] of Object.entries(certs)) {
    if (!EXTRA_CA.test(name)) {
      warnings.push({ key: 'certs', message: `certs: ${name} is not used by quayfleet (only extra_ca_certs/* are: trusted for the connection checks); TLS for the registry ends in front of it` });
      continue;
    }
    const text = typeof value !== 'string' ? '' : value.includes('-----BEGIN') ? value : Buffer.from(value, 'base64').toString('utf8');
    const pems = text.match(CERTIFICATE);
    if (!pems) errors.push({ key: 'certs', message: `certs: ${name} holds no PEM certificate (expected base64 of a file with -----BEGIN CERTIFICATE-----)` });
    else extraCaCerts[name] = pems.join('\n');
  }
  return { extraCaCerts, errors, warnings };
}

async function checkDatabase(dbUri: string, timeoutMs: number): Promise<ConfigIssue[]> {
  let client: Awaited<ReturnType<typeof createClient>> | undefined;
  try {
    client = createClient({ connectionString: dbUri, applicationName: 'quayfleet-config-validate', connectionTimeoutMs: timeoutMs });
    await client.connect();
    await client.query('SELECT 1');
    return [];
  } catch (error) {
    return [{ key: 'DB_URI', exact: true, message: `Could not connect to database. Error: ${messageOf(error)}` }];
  } finally {
    await client?.end().catch(() => undefined);
  }
}

async function checkRedis(url: string, timeoutMs: number, cas: string[]): Promise<ConfigIssue[]> {
  const tls = /^rediss/.test(url) && cas.length > 0 ? { tls: { ca: cas } } : {};
  const redis = connectRedis({ url }, { maxRetriesPerRequest: 0, connectTimeout: timeoutMs, retryStrategy: () => null, ...tls });
  let lastError: unknown;
  redis.on('error', (error: unknown) => { lastError = error; });
  try {
    const answer = await withTimeout(redis.ping(), timeoutMs, 'PING');
    if (answer !== 'PONG') throw new Error(`PING answered ${String(answer)}`);
    return [];
  } catch (error) {
    return [{ key: 'BUILDLOGS_REDIS', exact: true, message: `Could not connect to Redis with values provided in BUILDLOGS_REDIS (${redact(url)}). Error: ${messageOf(lastError ?? error)}` }];
  } finally {
    redis.disconnect();
  }
}

async function checkStorage(config: Config, env: NodeJS.ProcessEnv, timeoutMs: number, caFile: string | undefined): Promise<ConfigIssue[]> {
  const locations = Object.entries(config.quay.DISTRIBUTED_STORAGE_CONFIG);
  await loadStorageDrivers(locations.map(([, [driver]]) => driver));
  const issues = await Promise.all(locations.map(async ([location, [driver, params]]) => {
    const caParam = CA_PARAM[driver];
    const withCa = caFile && caParam && params[caParam] === undefined ? { ...params, [caParam]: caFile } : params;
    let store: ReturnType<typeof createObjectStore> | undefined;
    try {
      store = createObjectStore(driver, withCa, env);
      const mayCreate = withCa.create_bucket === true || withCa.create_container === true;
      if (mayCreate && store.ensureBucket) await withTimeout(store.ensureBucket(), timeoutMs, 'creating the bucket');
      await withTimeout(store.ping(), timeoutMs, 'listing');
      return [];
    } catch (error) {
      return [{ key: `DISTRIBUTED_STORAGE_CONFIG.${location}`, exact: true, message: `Could not connect to storage ${location}. Error: ${messageOf(error)}` }];
    } finally {
      await store?.close().catch(() => undefined);
    }
  }));
  return issues.flat();
}

/** Which connections the extra CA certificates could not be applied to. */
function caWarnings(config: Config, names: string[]): ConfigIssue[] {
  const untrusting = [
    ...(config.dbUri ? ['the database (give sslrootcert=FILE in DB_URI)'] : []),
    ...Object.entries(config.quay.DISTRIBUTED_STORAGE_CONFIG)
      .filter(([, [driver]]) => !CA_PARAM[driver] && driver !== 'LocalStorage')
      .map(([location, [driver]]) => `storage ${location} (${driver})`),
  ];
  if (untrusting.length === 0) return [];
  return [{
    key: 'extra_ca_certs',
    message: `extra_ca_certs (${names.join(', ')}) were trusted for Redis and the S3 and Swift storage only; not for ${untrusting.join(', ')}: `
      + 'to trust them there, point NODE_EXTRA_CA_CERTS at the bundle in the pod',
  }];
}

function writeBundle(pems: string[]): { file: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quayfleet-ca-'));
  const file = path.join(dir, 'extra-ca.pem');
  fs.writeFileSync(file, pems.map((pem) => pem.trim()).join('\n') + '\n', { mode: 0o600 });
  return { file, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(messageOf).join('; ');
  const message = error instanceof Error ? error.message : String(error);
  return message || (error as { code?: string }).code || 'unknown error';
}
