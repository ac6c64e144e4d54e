/**
 * Which of Quay's config field groups (its config tool's validators) a key belongs to, so errors
 * come back grouped as Quay's `POST /api/v1/config/validate` groups them. Keys Quay has no group
 * for get quayfleet's own (`ImageRegistry` for the OpenShift spec, `Environment` for variables).
 */
const EXACT: Record<string, string> = {
  SERVER_HOSTNAME: 'HostSettings', PREFERRED_URL_SCHEME: 'HostSettings', EXTERNAL_TLS_TERMINATION: 'HostSettings',
  BUILDLOGS_REDIS: 'Redis', USER_EVENTS_REDIS: 'Redis',
  DEFAULT_TAG_EXPIRATION: 'TimeMachine', TAG_EXPIRATION_OPTIONS: 'TimeMachine', FEATURE_CHANGE_TAG_EXPIRATION: 'TimeMachine',
  FEATURE_APP_SPECIFIC_TOKENS: 'AppTokenAuthentication',
  FEATURE_ANONYMOUS_ACCESS: 'AccessSettings', SUPER_USERS: 'AccessSettings',
  FEATURE_REPO_MIRROR: 'RepoMirror', FEATURE_MAILING: 'Email',
  FEATURE_SECURITY_SCANNER: 'SecurityScanner', FEATURE_SECURITY_NOTIFICATIONS: 'SecurityScanner',
  FEATURE_ACTION_LOG_ROTATION: 'ActionLogArchiving', LOGS_MODEL: 'ActionLogArchiving',
  FEATURE_STORAGE_REPLICATION: 'DistributedStorage', DATABASE_SECRET_KEY: 'Database',
};

const PREFIXES: [RegExp, string][] = [
  [/^spec\.storage/, 'DistributedStorage'],
  [/^spec\.replicas/, 'DistributedStorage'],
  [/^spec(\.|$)/, 'ImageRegistry'],
  [/^DB_/, 'Database'],
  [/^(DISTRIBUTED_STORAGE_|STORAGE_REPLICATION_|QUAY_DISTRIBUTED_STORAGE_)/, 'DistributedStorage'],
  [/^REPO_MIRROR_/, 'RepoMirror'],
  [/^SECURITY_SCANNER_/, 'SecurityScanner'],
  [/^MAIL_/, 'Email'],
  [/^(ACTION_LOG_|EXPORT_ACTION_LOGS_)/, 'ActionLogArchiving'],
  [/^(FEATURE_(NAMESPACE_|REPOSITORY_)?GARBAGE_COLLECTION|GARBAGE_COLLECTION_|PUSH_TEMP_TAG_|PERMANENTLY_DELETE_TAGS)/, 'GarbageCollection'],
  [/^(FEATURE_QUOTA_|QUOTA_|DEFAULT_SYSTEM_REJECT_QUOTA)/, 'QuotaManagement'],
  [/^(REDIS_URL|QUAYFLEET_|QUAY_)/, 'Environment'],
];

/** The field group of `key` (a config key, a dotted path under it, or a spec path). */
export function fieldGroupOf(key: string): string {
  const root = key.split('.')[0]!;
  if (EXACT[root]) return EXACT[root];
  for (const [pattern, group] of PREFIXES) if (pattern.test(key)) return group;
  return 'Other';
}
