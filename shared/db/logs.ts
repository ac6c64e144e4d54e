/**
 * Action logs (Quay's logentry3; `kind` is stored as Quay's kind name). The one way to write one
 * is `logAction(db, config.quay, entry)`: it applies Quay's skip rules (DISABLED_FOR_AUDIT_LOGS,
 * DISABLED_FOR_PULL_LOGS) and inserts in the caller's transaction, so the entry commits or rolls
 * back with the change it records. Pull logs on the hot path go through a PullLogBuffer instead
 * (registry/v2/pull-logs.ts), which writes them in batches with the same rules (`logsToWrite`).
 *
 * Contract for every writer (front end and workers):
 * - `kind` is one of LOG_KINDS (Quay's LogEntryKind names; add a kind there, never spell a new one inline);
 * - `namespace` is the account the entry belongs to ({id, name}; the name is what the skip rules match);
 * - `repositoryId` when the action concerns a repository; `performerId` the user or robot, null for the system;
 * - `metadata` uses Quay's keys for that kind (e.g. repo, namespace, tag; mirror: verb, namespace,
 *   repo, message, tag, tags, stdout, stderr); it is stored as JSON and shown as written.
 */
import type { Queryable } from './pool.ts';

/** Quay's log kind names (initdb's LogEntryKind) that quayfleet writes or may read back. */
export const LOG_KINDS = [
  'account_change_password', 'account_change_plan', 'account_convert',
  'user_create', 'user_delete', 'user_disable', 'user_enable', 'user_change_email', 'user_change_password',
  'user_change_name', 'user_change_tag_expiration', 'user_change_metadata',
  'create_robot', 'delete_robot', 'regenerate_robot_token', 'create_robot_federation', 'delete_robot_federation',
  'create_repo', 'delete_repo', 'change_repo_visibility', 'set_repo_description', 'change_repo_state', 'change_repo_trust',
  'push_repo', 'push_repo_failed', 'pull_repo', 'pull_repo_failed', 'repo_verb',
  'create_tag', 'move_tag', 'delete_tag', 'revert_tag', 'change_tag_expiration', 'permanently_delete_tag',
  'autoprune_tag_delete', 'create_manifest_label', 'delete_manifest_label', 'manifest_label_add', 'manifest_label_delete',
  'add_repo_permission', 'change_repo_permission', 'delete_repo_permission',
  'add_repo_accesstoken', 'delete_repo_accesstoken',
  'org_create', 'org_delete', 'org_create_team', 'org_delete_team', 'org_set_team_description', 'org_set_team_role',
  'org_add_team_member', 'org_remove_team_member', 'org_invite_team_member', 'org_delete_team_member_invite',
  'org_team_member_invite_accepted', 'org_team_member_invite_declined', 'org_change_email', 'org_change_name',
  'org_change_tag_expiration', 'org_change_invoicing',
  'create_prototype_permission', 'modify_prototype_permission', 'delete_prototype_permission',
  'org_create_quota', 'org_change_quota', 'org_delete_quota',
  'org_create_quota_limit', 'org_change_quota_limit', 'org_delete_quota_limit',
  'add_repo_notification', 'delete_repo_notification', 'reset_repo_notification',
  'create_namespace_notification', 'delete_namespace_notification', 'reset_namespace_notification',
  'add_repo_webhook', 'delete_repo_webhook',
  'repo_mirror_enabled', 'repo_mirror_disabled', 'repo_mirror_config_changed', 'repo_mirror_sync_now_requested',
  'repo_mirror_sync_started', 'repo_mirror_sync_success', 'repo_mirror_sync_failed',
  'repo_mirror_sync_tag_success', 'repo_mirror_sync_tag_failed',
  'repo_mirror_sync_test_started', 'repo_mirror_sync_test_success', 'repo_mirror_sync_test_failed',
  'create_app_specific_token', 'revoke_app_specific_token',
  'login_success', 'login_failure', 'logout_success',
  'export_logs_success', 'export_logs_failure',
  'service_key_create', 'service_key_approve', 'service_key_delete', 'service_key_modify', 'service_key_extend', 'service_key_rotate',
] as const;

/** A Quay log kind name. */
export type LogKind = (typeof LOG_KINDS)[number];

/** Kinds DISABLED_FOR_PULL_LOGS silences (Quay's _PULL_LOG_KINDS). */
export const PULL_LOG_KINDS: ReadonlySet<string> = new Set<LogKind>(['pull_repo', 'repo_verb']);

/** The config keys the skip rules read; pass `config.quay`. */
export interface LogSettings {
  readonly DISABLED_FOR_AUDIT_LOGS: readonly string[];
  readonly DISABLED_FOR_PULL_LOGS: readonly string[];
}

/** No skip rules: for tools and callers outside a configured process. */
export const NO_LOG_SKIPS: LogSettings = Object.freeze({ DISABLED_FOR_AUDIT_LOGS: [], DISABLED_FOR_PULL_LOGS: [] });

/** One action log entry to write. */
export interface ActionLog {
  kind: LogKind;
  /** The account the entry belongs to; null for registry-wide entries (superuser actions). */
  namespace: { readonly id: number; readonly name: string } | null;
  /** Who did it (user or robot id); null for the system or anonymous. */
  performerId?: number | null;
  repositoryId?: number | null;
  ip?: string | null;
  metadata?: Record<string, unknown>;
  /** Defaults to the database's now(). */
  datetime?: Date;
}

/** Whether Quay's skip rules silence `entry` (a namespace in DISABLED_FOR_AUDIT_LOGS, or a pull in DISABLED_FOR_PULL_LOGS). */
export function isLogSkipped(settings: LogSettings, entry: Pick<ActionLog, 'kind' | 'namespace'>): boolean {
  const name = entry.namespace?.name;
  if (name === undefined) return false;
  if (settings.DISABLED_FOR_AUDIT_LOGS.includes(name)) return true;
  return PULL_LOG_KINDS.has(entry.kind) && settings.DISABLED_FOR_PULL_LOGS.includes(name);
}

/** The entries of `entries` the skip rules let through. */
export function logsToWrite(settings: LogSettings, entries: readonly ActionLog[]): ActionLog[] {
  if (settings.DISABLED_FOR_AUDIT_LOGS.length === 0 && settings.DISABLED_FOR_PULL_LOGS.length === 0) return [...entries];
  return entries.filter((entry) => !isLogSkipped(settings, entry));
}

/** Writes `entry` unless a skip rule silences it; returns whether it was written. */
export async function logAction(db: Queryable, settings: LogSettings, entry: ActionLog): Promise<boolean> {
  if (isLogSkipped(settings, entry)) return false;
  await db.query(
    `INSERT INTO logentry (kind, account_id, performer_id, repository_id, ip, metadata_json, datetime)
     VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now()))`,
    [entry.kind, entry.namespace?.id ?? null, entry.performerId ?? null, entry.repositoryId ?? null, entry.ip ?? null,
      JSON.stringify(entry.metadata ?? {}), entry.datetime ?? null],
  );
  return true;
}

/**
 * Writes many entries in one INSERT (the skip rules applied first); returns how many were written.
 * Used by batched writers such as the pull-log buffer.
 */
export async function logActions(db: Queryable, settings: LogSettings, entries: readonly ActionLog[]): Promise<number> {
  const kept = logsToWrite(settings, entries);
  if (kept.length === 0) return 0;
  await db.query(
    `INSERT INTO logentry (kind, account_id, performer_id, repository_id, ip, metadata_json, datetime)
     SELECT kind, account_id, performer_id, repository_id, ip, metadata_json, COALESCE(datetime, now())
     FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::jsonb[], $7::timestamptz[])
       AS t(kind, account_id, performer_id, repository_id, ip, metadata_json, datetime)`,
    [kept.map((e) => e.kind), kept.map((e) => e.namespace?.id ?? null), kept.map((e) => e.performerId ?? null),
      kept.map((e) => e.repositoryId ?? null), kept.map((e) => e.ip ?? null), kept.map((e) => JSON.stringify(e.metadata ?? {})),
      kept.map((e) => e.datetime ?? null)],
  );
  return kept.length;
}

export interface LogEntryRow {
  id: number;
  kind: string;
  account_id: number | null;
  performer_id: number | null;
  repository_id: number | null;
  datetime: Date;
  ip: string | null;
  metadata_json: Record<string, unknown>;
}
