/**
 * Repository mirror configs (Quay's `repomirrorconfig` and `repomirrorrule`): the front end writes
 * them, the repomirrorworker claims, renews and releases them. Status numbers, the 3 retries, the
 * retry countdown and the grid-aligned next start are Quay's (data/model/repo_mirror.py).
 *
 * Glossary
 * - claim: a sync taking the row: status SYNCING, a lease (`sync_expiration_date`) and a claim
 *   token (`sync_claim_id`) that only claims set.
 * - lease: renewed while the sync runs; an expired lease is reclaimable by the next tick, so a
 *   killed worker never leaves the row stuck in SYNCING (Quay's bug #7000).
 * - release: the end of a sync, conditioned on the claim token; API edits roll
 *   `sync_transaction_id` as in Quay but never the claim token, so an edit mid-sync cannot strand
 *   the row either.
 */
import type { Queryable } from './pool.ts';
import { RepositoryState } from './repositories.ts';

/** Quay's RepoMirrorStatus numbers. */
export const RepoMirrorStatus = { CANCEL: -2, FAIL: -1, NEVER_RUN: 0, SUCCESS: 1, SYNCING: 2, SYNC_NOW: 3 } as const;
export type RepoMirrorStatusValue = (typeof RepoMirrorStatus)[keyof typeof RepoMirrorStatus];

/** The API's name of a status number. */
export function mirrorStatusName(status: number): string {
  return Object.entries(RepoMirrorStatus).find(([, v]) => v === status)?.[0] ?? 'NEVER_RUN';
}

/** Quay's MAX_SYNC_RETRIES. */
export const MAX_SYNC_RETRIES = 3;

/** `external_registry_config` as stored. */
export interface ExternalRegistryConfig {
  verify_tls?: boolean;
  unsigned_images?: boolean;
  proxy?: { http_proxy?: string | null; https_proxy?: string | null; no_proxy?: string | null };
  [key: string]: unknown;
}

/** A mirror config with its rule, robot and repository names. */
export interface MirrorConfigRow {
  id: number;
  repository_id: number;
  namespace_user_id: number;
  namespace: string;
  repository: string;
  creation_date: Date;
  is_enabled: boolean;
  mirror_type: number;
  internal_robot_id: number | null;
  robot_username: string | null;
  external_reference: string;
  /** Stored (`v0$$...`) forms; decrypt with FieldEncrypter. */
  external_registry_username: string | null;
  external_registry_password: string | null;
  external_registry_config: ExternalRegistryConfig;
  architecture_filter: string[] | null;
  sync_interval: number;
  sync_start_date: Date | null;
  sync_expiration_date: Date | null;
  sync_retries_remaining: number;
  sync_status: number;
  sync_transaction_id: string;
  sync_claim_id: string | null;
  sync_last_error: string | null;
  root_rule_id: number | null;
  rule_type: number | null;
  rule_value: unknown;
  skopeo_timeout: number;
}

const SELECT = `SELECT c.id, c.repository_id, r.namespace_user_id, n.username AS namespace, r.name AS repository, c.creation_date,
  c.is_enabled, c.mirror_type, c.internal_robot_id, robot.username AS robot_username, c.external_reference,
  c.external_registry_username, c.external_registry_password, c.external_registry_config, c.architecture_filter,
  c.sync_interval, c.sync_start_date, c.sync_expiration_date, c.sync_retries_remaining, c.sync_status,
  c.sync_transaction_id::text AS sync_transaction_id, c.sync_claim_id::text AS sync_claim_id, c.sync_last_error,
  c.root_rule_id, rule.rule_type, rule.rule_value, c.skopeo_timeout::int AS skopeo_timeout
  FROM repomirrorconfig c JOIN repository r ON r.id = c.repository_id JOIN namespace n ON n.id = r.namespace_user_id
  LEFT JOIN namespace robot ON robot.id = c.internal_robot_id LEFT JOIN repomirrorrule rule ON rule.id = c.root_rule_id`;

/** The mirror config of a repository, or undefined. */
export async function getMirrorByRepository(db: Queryable, repositoryId: number): Promise<MirrorConfigRow | undefined> {
  const { rows } = await db.query<MirrorConfigRow>(`${SELECT} WHERE c.repository_id = $1`, [repositoryId]);
  return rows[0];
}

/** What a new mirror config holds (credentials already encrypted). */
export interface NewMirrorConfig {
  repositoryId: number;
  isEnabled: boolean;
  robotId: number;
  externalReference: string;
  username: string | null;
  password: string | null;
  registryConfig: ExternalRegistryConfig;
  architectureFilter: string[];
  syncInterval: number;
  syncStartDate: Date;
  ruleType: number;
  ruleValue: string[];
  skopeoTimeout: number;
}

/**
 * Creates the rule and the config, sets the repository to MIRROR and grants the robot `write`
 * unless it already holds write or admin (Quay's create, one transaction). False when a config exists.
 */
export async function createMirror(tx: Queryable, input: NewMirrorConfig): Promise<boolean> {
  const { rows: existing } = await tx.query(`SELECT 1 FROM repomirrorconfig WHERE repository_id = $1 FOR UPDATE`, [input.repositoryId]);
  if (existing.length > 0) return false;
  const { rows } = await tx.query<{ id: number }>(
    `INSERT INTO repomirrorrule (repository_id, rule_type, rule_value) VALUES ($1, $2, $3) RETURNING id`,
    [input.repositoryId, input.ruleType, JSON.stringify(input.ruleValue)]);
  await tx.query(
    `INSERT INTO repomirrorconfig (repository_id, is_enabled, internal_robot_id, external_reference, external_registry_username,
       external_registry_password, external_registry_config, architecture_filter, sync_interval, sync_start_date, root_rule_id, skopeo_timeout)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [input.repositoryId, input.isEnabled, input.robotId, input.externalReference, input.username, input.password,
      JSON.stringify(input.registryConfig), JSON.stringify(input.architectureFilter), input.syncInterval, input.syncStartDate,
      rows[0]!.id, input.skopeoTimeout]);
  await tx.query(`UPDATE repository SET state = $2 WHERE id = $1`, [input.repositoryId, RepositoryState.MIRROR]);
  await grantMirrorRobot(tx, input.repositoryId, input.robotId);
  return true;
}

/** Gives the robot `write` on the repository unless it holds write or admin already. */
export async function grantMirrorRobot(tx: Queryable, repositoryId: number, robotId: number): Promise<void> {
  await tx.query(
    `INSERT INTO repositorypermission (repository_id, user_id, role) VALUES ($1, $2, 'write')
     ON CONFLICT (repository_id, user_id) WHERE user_id IS NOT NULL DO UPDATE SET role = 'write' WHERE repositorypermission.role = 'read'`,
    [repositoryId, robotId]);
}

/** Column changes an API edit may make (already validated and encrypted). */
export interface MirrorChanges {
  is_enabled?: boolean;
  internal_robot_id?: number;
  external_reference?: string;
  external_registry_username?: string | null;
  external_registry_password?: string | null;
  external_registry_config?: ExternalRegistryConfig;
  architecture_filter?: string[];
  sync_interval?: number;
  sync_start_date?: Date;
  skopeo_timeout?: number;
}

const JSON_COLUMNS = new Set(['external_registry_config', 'architecture_filter']);

/** Applies an API edit and rolls `sync_transaction_id` as Quay does (never the claim token). */
export async function updateMirror(tx: Queryable, id: number, changes: MirrorChanges, rule?: { type: number; value: string[] }): Promise<void> {
  const entries = Object.entries(changes).filter(([, v]) => v !== undefined);
  const sets = entries.map(([column], i) => `${column} = $${i + 2}`);
  const values = entries.map(([column, v]) => (JSON_COLUMNS.has(column) ? JSON.stringify(v) : v));
  await tx.query(`UPDATE repomirrorconfig SET ${[...sets, 'sync_transaction_id = gen_random_uuid()'].join(', ')} WHERE id = $1`, [id, ...values]);
  if (rule) {
    await tx.query(
      `UPDATE repomirrorrule SET rule_type = $2, rule_value = $3 WHERE id = (SELECT root_rule_id FROM repomirrorconfig WHERE id = $1)`,
      [id, rule.type, JSON.stringify(rule.value)]);
  }
}

/** Quay's sync-now: refused (false) while SYNCING; else SYNC_NOW, no lease, at least one retry. */
export async function requestSyncNow(db: Queryable, repositoryId: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE repomirrorconfig SET sync_status = ${RepoMirrorStatus.SYNC_NOW}, sync_expiration_date = NULL,
       sync_retries_remaining = GREATEST(sync_retries_remaining, 1), sync_transaction_id = gen_random_uuid()
     WHERE repository_id = $1 AND sync_status <> ${RepoMirrorStatus.SYNCING}`, [repositoryId]);
  return rowCount === 1;
}

/** Quay's sync-cancel: only from SYNCING or SYNC_NOW (false otherwise); CANCEL, no lease, 0 retries. */
export async function cancelSync(db: Queryable, repositoryId: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE repomirrorconfig SET sync_status = ${RepoMirrorStatus.CANCEL}, sync_expiration_date = NULL,
       sync_retries_remaining = 0, sync_transaction_id = gen_random_uuid()
     WHERE repository_id = $1 AND sync_status IN (${RepoMirrorStatus.SYNCING}, ${RepoMirrorStatus.SYNC_NOW})`, [repositoryId]);
  return rowCount === 1;
}

// Quay's three candidate filters, with the expired-lease one made real: an expired SYNCING row is
// claimable whatever its retries or enabled flag (the sync it belonged to is dead).
const ELIGIBLE = `r.state = ${RepositoryState.MIRROR} AND (
  (c.sync_status = ${RepoMirrorStatus.SYNC_NOW} AND c.sync_expiration_date IS NULL)
  OR (c.is_enabled AND c.sync_status <> ${RepoMirrorStatus.SYNCING} AND c.sync_expiration_date IS NULL
      AND c.sync_retries_remaining > 0 AND c.sync_start_date <= $1)
  OR (c.sync_status = ${RepoMirrorStatus.SYNCING} AND c.sync_expiration_date <= $1))`;

/** Repositories whose mirror is due at `now`, oldest start first, at most `limit`. */
export async function findDueMirrors(db: Queryable, now: Date, limit: number): Promise<{ repository_id: number; namespace: string; repository: string }[]> {
  const { rows } = await db.query<{ repository_id: number; namespace: string; repository: string }>(
    `SELECT c.repository_id, n.username AS namespace, r.name AS repository
     FROM repomirrorconfig c JOIN repository r ON r.id = c.repository_id JOIN namespace n ON n.id = r.namespace_user_id
     WHERE ${ELIGIBLE} ORDER BY c.sync_start_date NULLS FIRST, c.id LIMIT $2`, [now, limit]);
  return rows;
}

/** Mirrors of MIRROR repositories not yet synced successfully (Quay's quay_repository_rows_unmirrored). */
export async function countUnmirrored(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM repomirrorconfig c JOIN repository r ON r.id = c.repository_id
     WHERE r.state = ${RepositoryState.MIRROR} AND c.sync_status <> ${RepoMirrorStatus.SUCCESS}`);
  return rows[0]!.n;
}

/**
 * Claims the mirror of `repositoryId` if it is eligible at `now`: SYNCING, a lease until
 * `now + leaseMs`, the new claim token. One conditional UPDATE, so of two workers exactly one
 * wins. Returns the claimed row, or undefined (not due, or another worker holds it).
 */
export async function claimMirror(db: Queryable, repositoryId: number, claimId: string, now: Date, leaseMs: number): Promise<MirrorConfigRow | undefined> {
  const { rowCount } = await db.query(
    `UPDATE repomirrorconfig c SET sync_status = ${RepoMirrorStatus.SYNCING}, sync_expiration_date = $3,
       sync_claim_id = $2, sync_transaction_id = gen_random_uuid()
     FROM repository r WHERE r.id = c.repository_id AND c.repository_id = $4 AND ${ELIGIBLE}`,
    [now, claimId, new Date(now.getTime() + leaseMs), repositoryId]);
  if (rowCount !== 1) return undefined;
  return getMirrorByRepository(db, repositoryId);
}

/** Extends the lease of a running sync; false when the row is no longer this claim's (cancelled or reclaimed). */
export async function renewMirrorLease(db: Queryable, id: number, claimId: string, until: Date): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE repomirrorconfig SET sync_expiration_date = $3
     WHERE id = $1 AND sync_claim_id = $2 AND sync_status = ${RepoMirrorStatus.SYNCING}`, [id, claimId, until]);
  return rowCount === 1;
}

/** The current status of a mirror (the sync's cancel check between tags). */
export async function mirrorStatus(db: Queryable, id: number): Promise<{ status: number; claimId: string | null } | undefined> {
  const { rows } = await db.query<{ status: number; claim_id: string | null }>(
    `SELECT sync_status AS status, sync_claim_id::text AS claim_id FROM repomirrorconfig WHERE id = $1`, [id]);
  return rows[0] && { status: rows[0].status, claimId: rows[0].claim_id };
}

/** Quay's next start: on the grid of `interval` seconds anchored at the old start (NULL: now). */
export function nextSyncStart(oldStart: Date | null, intervalS: number, now: Date): Date {
  const start = oldStart ?? now;
  if (intervalS <= 0) return now;
  const sinceS = Math.max(0, (now.getTime() - start.getTime()) / 1000);
  return new Date(now.getTime() + (intervalS - (sinceS % intervalS)) * 1000);
}

/**
 * Ends a sync as Quay's release_mirror does, conditioned on this sync's claim token. A CANCEL
 * written by the API meanwhile wins over the sync's own outcome. Returns the status written, or
 * undefined when the row is no longer this claim's.
 */
export async function releaseMirror(
  tx: Queryable, id: number, claimId: string, outcome: 'SUCCESS' | 'FAIL' | 'CANCEL', now: Date, error?: string,
): Promise<number | undefined> {
  const { rows } = await tx.query<{ sync_status: number; sync_retries_remaining: number; sync_start_date: Date | null; sync_interval: number }>(
    `SELECT sync_status, sync_retries_remaining, sync_start_date, sync_interval FROM repomirrorconfig
     WHERE id = $1 AND sync_claim_id = $2 FOR UPDATE`, [id, claimId]);
  const row = rows[0];
  if (!row) return undefined;
  const effective = row.sync_status === RepoMirrorStatus.CANCEL ? 'CANCEL' : outcome;
  let retries = row.sync_retries_remaining;
  let start: Date | null = row.sync_start_date;
  if (effective === 'CANCEL') {
    retries = 0;
    start = null;
  } else {
    if (effective === 'FAIL') retries = Math.max(0, retries - 1);
    if (effective === 'SUCCESS' || retries < 1) {
      start = nextSyncStart(row.sync_start_date, row.sync_interval, now);
      retries = MAX_SYNC_RETRIES;
    }
  }
  const status = RepoMirrorStatus[effective];
  await tx.query(
    `UPDATE repomirrorconfig SET sync_status = $2, sync_retries_remaining = $3, sync_start_date = $4, sync_expiration_date = NULL,
       sync_claim_id = NULL, sync_last_error = $5, sync_transaction_id = gen_random_uuid() WHERE id = $1`,
    [id, status, retries, start, effective === 'FAIL' ? (error ?? 'unknown error') : null]);
  return status;
}
