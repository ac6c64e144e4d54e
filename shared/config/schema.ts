/**
 * The schema of a Quay `config.yaml`, limited to the keys quayfleet reads, with Quay's defaults
 * (reference/seed-requirements.md §19). Unknown keys are accepted and ignored, as Quay does;
 * a known key with the wrong type is an error naming the key.
 */
import { z } from 'zod';
import { parseDurationSeconds } from './durations.ts';

/** What the front end waits for storage without progress by default, two tries (shared/storage/timeouts.ts). */
export const REGISTRY_STORAGE_TIMEOUT_SECONDS = 5;
/** What workers and admin commands wait by default, three tries. */
export const WORKER_STORAGE_TIMEOUT_SECONDS = 60;

const DURATION_EXPECTED = 'expected a duration: a number and one unit of s, m, h, d or w, e.g. "30s", "1d" or "2w"';

/**
 * The message of every config error, by what the value should have been: the loader puts the key
 * and the value in front ("GARBAGE_COLLECTION_FREQUENCY: "abc" is not valid; expected a number of
 * seconds, e.g. 30"). Passed to every parse of config (config.yaml and environment), so a key added
 * with a plain `z.boolean()` or `z.enum()` gets a readable message too; a schema's own `error`
 * (seconds, durations, URLs) wins over it.
 */
export const configErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${EXPECTED_TYPE[issue.expected] ?? `a ${issue.expected}`}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return `expected ${bound(issue.origin, issue.inclusive ? 'at least' : 'more than', issue.minimum)}`;
    case 'too_big':
      return `expected ${bound(issue.origin, issue.inclusive ? 'at most' : 'less than', issue.maximum)}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'regex' ? `expected a string matching ${issue.pattern}` : `expected ${issue.format}`;
    default:
      return undefined;
  }
};

const EXPECTED_TYPE: Record<string, string> = {
  boolean: 'true or false', number: 'a number', int: 'a whole number', string: 'a string',
  array: 'a list', tuple: 'a list', object: 'a mapping of keys to values', record: 'a mapping of keys to values',
};

function bound(origin: string, relation: string, limit: number | bigint): string {
  if (origin === 'string') return Number(limit) === 1 && relation === 'at least' ? 'a non-empty string' : `a string of ${relation} ${limit} characters`;
  if (origin === 'array') return `a list of ${relation} ${limit} entries`;
  return `a number ${relation} ${limit}`;
}

/** Quay types several second counts as strings ("30"); accept a number or a numeric string. */
const seconds = z.union([
  z.number().int().nonnegative(),
  z.string().regex(/^\s*\d+\s*$/).transform((s) => Number(s.trim())),
], { error: 'expected a number of seconds, e.g. 30' });

const duration = z.string({ error: DURATION_EXPECTED }).refine((s) => parseDurationSeconds(s) !== undefined, { error: DURATION_EXPECTED });

/** A Postgres URL; quayfleet speaks only Postgres, so Quay's mysql:// and sqlite:// are refused here. */
const postgresUrl = z.string().regex(/^postgres(ql)?:\/\/\S+$/, {
  error: 'expected a postgresql:// URL, e.g. postgresql://quay:quay@localhost:5432/quay',
});

const redisLocation = z.looseObject({
  host: z.string().min(1),
  port: z.union([z.number().int().positive(), z.string().regex(/^\d+$/).transform(Number)], { error: 'expected a port number, e.g. 6379' }).default(6379),
  password: z.string().optional(),
  ssl: z.boolean().optional(),
});

/** One storage location: `[DriverName, {params}]`, as in Quay's DISTRIBUTED_STORAGE_CONFIG. */
const storageLocation = z.tuple([z.string().min(1), z.record(z.string(), z.unknown())]);

export const quayConfigSchema = z.looseObject({
  SERVER_HOSTNAME: z.string().min(1).default('localhost:8080'),
  PREFERRED_URL_SCHEME: z.enum(['http', 'https']).default('http'),
  REGISTRY_STATE: z.enum(['normal', 'readonly']).default('normal'),
  SUPER_USERS: z.array(z.string()).default([]),
  DATABASE_SECRET_KEY: z.string().optional(),
  SECRET_KEY: z.string().optional(),
  DB_URI: postgresUrl.optional(),
  DB_CONNECTION_POOLING: z.boolean().default(true),
  DB_CONNECTION_ARGS: z.looseObject({
    max_connections: z.number().int().positive().optional(),
    sslmode: z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).optional(),
  }).default({}),
  BUILDLOGS_REDIS: redisLocation.optional(),
  USER_EVENTS_REDIS: redisLocation.optional(),

  FEATURE_ANONYMOUS_ACCESS: z.boolean().default(true),
  FEATURE_APP_SPECIFIC_TOKENS: z.boolean().default(true),
  FEATURE_GARBAGE_COLLECTION: z.boolean().default(true),
  FEATURE_NAMESPACE_GARBAGE_COLLECTION: z.boolean().default(true),
  FEATURE_REPOSITORY_GARBAGE_COLLECTION: z.boolean().default(true),
  FEATURE_QUOTA_MANAGEMENT: z.boolean().default(false),
  FEATURE_REPO_MIRROR: z.boolean().default(false),
  FEATURE_STORAGE_REPLICATION: z.boolean().default(false),
  FEATURE_SECURITY_SCANNER: z.boolean().default(false),
  FEATURE_SECURITY_NOTIFICATIONS: z.boolean().default(false),
  FEATURE_LOG_EXPORT: z.boolean().default(true),
  FEATURE_ACTION_LOG_ROTATION: z.boolean().default(false),
  FEATURE_GENERAL_OCI_SUPPORT: z.boolean().default(true),
  FEATURE_RATE_LIMITS: z.boolean().default(false),

  GARBAGE_COLLECTION_FREQUENCY: seconds.default(30),
  DEFAULT_TAG_EXPIRATION: duration.default('2w'),
  TAG_EXPIRATION_OPTIONS: z.array(duration).default(['0s', '1d', '1w', '2w', '4w']),
  PUSH_TEMP_TAG_EXPIRATION_SEC: seconds.default(3600),
  PERMANENTLY_DELETE_TAGS: z.boolean().default(false),
  RESET_CHILD_MANIFEST_EXPIRATION: z.boolean().default(false),
  CLEAN_BLOB_UPLOAD_FOLDER: z.boolean().default(true),
  /** Minutes after which an upload session with no activity is abandoned (Quay: 2880, two days). */
  BLOBUPLOAD_DELETION_DATE_THRESHOLD: z.number().positive().default(2880),
  BLOBUPLOAD_CLEANUP_FREQUENCY: seconds.default(3600),
  FEATURE_ENABLE_STALE_MPU_CLEANUP: z.boolean().default(true),

  QUOTA_TOTAL_DELAY_SECONDS: seconds.default(1800),
  QUOTA_BACKFILL: z.boolean().default(true),
  DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: z.number().int().nonnegative().optional(),

  REPO_MIRROR_INTERVAL: seconds.default(30),
  REPO_MIRROR_SERVER_HOSTNAME: z.string().optional(),
  // Quay's config.py default (the seed's table says false); only skopeo's push into Quay used it.
  REPO_MIRROR_TLS_VERIFY: z.boolean().default(true),
  REPO_MIRROR_ROLLBACK: z.boolean().default(false),
  FEATURE_SPARSE_INDEX: z.boolean().default(false),

  DISTRIBUTED_STORAGE_CONFIG: z.record(z.string(), storageLocation).optional(),
  DISTRIBUTED_STORAGE_PREFERENCE: z.array(z.string()).optional(),
  DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: z.array(z.string()).default([]),
  STORAGE_REPLICATION_PROCESSING_SECONDS: seconds.default(1200),
  /** quayfleet's: let the replication worker run with LocalStorage locations (all on one machine or one shared volume). */
  STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE: z.boolean().default(false),
  /**
   * quayfleet's: how long a storage request may go without progress (connecting, until the answer
   * starts, or between bytes) before it fails: in the front end (then 503 with Retry-After; two
   * tries) and in workers and commands (the job is retried; three tries). Never a whole transfer.
   * The defaults are shared/storage/timeouts.ts's (this layer imports nothing above it).
   */
  REGISTRY_STORAGE_TIMEOUT_SECONDS: z.number().positive().default(REGISTRY_STORAGE_TIMEOUT_SECONDS),
  WORKER_STORAGE_TIMEOUT_SECONDS: z.number().positive().default(WORKER_STORAGE_TIMEOUT_SECONDS),

  ALLOWED_OCI_ARTIFACT_TYPES: z.record(z.string(), z.array(z.string())).optional(),
  IGNORE_UNKNOWN_MEDIATYPES: z.boolean().default(false),
  MAXIMUM_MANIFEST_SIZE_BYTES: z.number().int().positive().default(4 * 1024 * 1024),

  LOGS_MODEL: z.string().default('database'),
  DISABLED_FOR_AUDIT_LOGS: z.array(z.string()).default([]),
  DISABLED_FOR_PULL_LOGS: z.array(z.string()).default([]),
  FEATURE_AGGREGATED_LOG_COUNT_RETRIEVAL: z.boolean().default(true),
  ACTION_LOG_MAX_PAGE: z.number().int().positive().nullable().optional(),
  EXPORT_ACTION_LOGS_SECONDS: seconds.default(3600),
  EXPORT_ACTION_LOGS_MAXIMUM_SECONDS: seconds.default(7200),
  EXPORT_ACTION_LOGS_MAXIMUM_QUERY_TIME_SECONDS: seconds.default(30),
  EXPORT_ACTION_LOGS_STORAGE_PATH: z.string().min(1).default('exportedactionlogs'),
  ACTION_LOG_ROTATION_THRESHOLD: duration.default('30d'),
  ACTION_LOG_ROTATION_FREQUENCY: seconds.default(12 * 3600),
  NOTIFICATION_SEND_TIMEOUT: seconds.default(10),
  // Hostnames, addresses or CIDR ranges user-configured URLs may reach although private (shared/net/ssrf.ts).
  SSRF_ALLOWED_HOSTS: z.array(z.string().min(1)).default([]),
  WEBHOOK_HOSTNAME_BLACKLIST: z.array(z.string().min(1)).default([]),
  FEATURE_MAILING: z.boolean().default(true),
  MAIL_SERVER: z.string().default(''),
  MAIL_PORT: z.number().int().positive().default(587),
  MAIL_USE_TLS: z.boolean().default(true),
  MAIL_USE_AUTH: z.boolean().default(false),
  MAIL_USERNAME: z.string().optional(),
  MAIL_PASSWORD: z.string().optional(),
  MAIL_DEFAULT_SENDER: z.union([z.string(), z.tuple([z.string(), z.string()])]).default('support@quay.io'),
  SECURITY_SCANNER_V4_ENDPOINT: z.url().optional(),
  SECURITY_SCANNER_V4_PSK: z.string().optional(),
  ACTION_LOG_ARCHIVE_LOCATION: z.string().optional(),
  ACTION_LOG_ARCHIVE_PATH: z.string().optional(),

  // Health (Quay's health/services.py): free-space fractions below which disk_space fails / disk_space_warning is raised.
  DISKSPACE_HEALTH_THRESHOLD: z.number().min(0).max(1).default(0.01),
  DISKSPACE_HEALTH_WARNING_THRESHOLD: z.number().min(0).max(1).default(0.1),
  GUNICORN_HEALTH_CHECK_TIMEOUT: seconds.default(2),
});

export type QuayConfig = z.output<typeof quayConfigSchema>;
