/**
 * One sync of one mirror, as Quay's `perform_mirror` (reference §1.5) with a native copy:
 * claim (lease + claim token) → re-check the source against SSRF rules with DNS → started event →
 * list upstream tags → select by rule → copy each tag in sorted order, checking for a cancel
 * between tags → delete local tags no longer selected or gone upstream → roll back on failure when
 * REPO_MIRROR_ROLLBACK → final event → release with Quay's retry countdown.
 *
 * Differences from Quay, on purpose: the lease is short and renewed while the sync runs (a killed
 * worker's row is reclaimed within one lease, not stuck); the release is conditioned on the claim
 * token (an API edit mid-sync cannot strand it); started and failed notifications go out once per
 * sync (the first attempt, the final failure), not once per retry, and never twice for one run.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Config } from '../../shared/config/index.ts';
import { DecryptionFailureError, FieldEncrypter } from '../../shared/db/encrypted-field.ts';
import { compileRule, tagsToMirror } from '../../shared/db/mirror-rules.ts';
import {
  claimMirror, getMirrorByRepository, MAX_SYNC_RETRIES, mirrorStatus, releaseMirror, renewMirrorLease, RepoMirrorStatus, type MirrorConfigRow,
} from '../../shared/db/mirrors.ts';
import { withTransaction, type Pool } from '../../shared/db/pool.ts';
import { getRepositoryById, type RepositoryRow } from '../../shared/db/repositories.ts';
import { validateExternalReference, type ExternalReference } from '../../shared/net/registry-reference.ts';
import type { Logger } from '../../shared/runtime/logger.ts';
import type { DistributedStorage } from '../../shared/storage/distributed.ts';
import { applyTags } from './apply.ts';
import { newCopyContext, type CopyContext, type Semaphore } from './copy.ts';
import { emitMirrorEvent, writeMirrorEvent, type MirrorEvent } from './events.ts';
import * as m from './metrics.ts';
import { extraCaDirOf, extraCaFor } from './extra-ca.ts';
import { rollbackTags, snapshotTags, type TagSnapshot } from './rollback.ts';
import { aliveTagNames, deleteTags, type MirrorTarget } from './store.ts';
import { UpstreamRepository } from './upstream.ts';

/** What a sync needs from its process. */
export interface SyncDeps {
  readonly db: Pool;
  readonly storage: DistributedStorage;
  readonly config: Config;
}

/** Tunables of the sync engine (defaults in index.ts). */
export interface SyncSettings {
  /** Lease length; renewed every third of it while the sync runs. */
  readonly leaseMs: number;
  /** Blob transfers of one sync at once. */
  readonly blobsPerSync: number;
  /** Blob transfers of the whole process at once (shared by its syncs). */
  readonly perWorker: Semaphore;
  /** Tags prepared (manifests fetched, blobs copied) ahead of the one being applied; tags are applied in order. */
  readonly tagsAhead?: number;
  /** Socket inactivity limit toward the upstream. */
  readonly idleTimeoutMs: number;
  /** Quay's extra CA directory (extra-ca.ts); default `extra_ca_certs` beside config.yaml. */
  readonly extraCaDir?: string;
  /** Called for each upstream request (metrics, tests). */
  readonly onUpstreamRequest?: (method: string, url: URL) => void;
}

/** How a sync job ended. */
export type SyncResult = 'not_due' | 'SUCCESS' | 'FAIL' | 'CANCEL' | 'interrupted';

interface Run {
  readonly deps: SyncDeps;
  readonly settings: SyncSettings;
  readonly log: Logger;
  readonly mirror: MirrorConfigRow;
  readonly claimId: string;
  readonly repository: RepositoryRow;
  readonly abort: AbortController;
  readonly firstAttempt: boolean;
  readonly finalAttempt: boolean;
  readonly patterns: string;
}

/** Runs one sync of the mirror of `repositoryId` if it is due and unclaimed. */
export async function performMirror(deps: SyncDeps, repositoryId: number, settings: SyncSettings, log: Logger, shutdown: AbortSignal): Promise<SyncResult> {
  const before = await getMirrorByRepository(deps.db, repositoryId);
  const claimId = randomUUID();
  const mirror = before && await claimMirror(deps.db, repositoryId, claimId, new Date(), settings.leaseMs);
  const repository = mirror && await getRepositoryById(deps.db, repositoryId);
  if (!before || !mirror || !repository) {
    m.syncsTotal.inc({ outcome: 'preempted' });
    return 'not_due';
  }
  const abort = new AbortController();
  // Every request and storage write of the sync listens on it (bounded by the transfer limits).
  setMaxListeners(256, abort.signal);
  const onShutdown = (): void => abort.abort(new Error('worker shutting down'));
  shutdown.addEventListener('abort', onShutdown);
  const run: Run = {
    deps, settings, log, mirror, claimId, repository, abort,
    firstAttempt: before.sync_status === RepoMirrorStatus.SYNC_NOW || before.sync_retries_remaining >= MAX_SYNC_RETRIES,
    finalAttempt: mirror.sync_retries_remaining <= 1,
    patterns: Array.isArray(mirror.rule_value) ? (mirror.rule_value as string[]).join(',') : '',
  };
  const heartbeat = setInterval(() => {
    renewMirrorLease(deps.db, mirror.id, claimId, new Date(Date.now() + settings.leaseMs))
      .then((ours) => { if (!ours) abort.abort(new Error('the sync was cancelled or reclaimed')); })
      .catch((error: unknown) => log.warn({ err: error }, 'mirror lease renewal failed'));
  }, Math.max(100, Math.floor(settings.leaseMs / 3)));
  m.workersActive.inc();
  m.lastSyncStatus.labels({ namespace: repository.namespace, repository: repository.name, last_error_reason: '' }).set(2);
  const started = Date.now();
  try {
    return await syncClaimed(run);
  } finally {
    // Ends what a tag abandoned at its skopeo_timeout may still be transferring.
    abort.abort(new Error('the sync ended'));
    clearInterval(heartbeat);
    shutdown.removeEventListener('abort', onShutdown);
    m.workersActive.dec();
    m.syncDuration.observe((Date.now() - started) / 1000);
  }
}

async function event(run: Run, e: MirrorEvent): Promise<void> {
  await emitMirrorEvent(run.deps.db, run.deps.config, run.repository, e);
}

async function finish(run: Run, outcome: 'SUCCESS' | 'FAIL' | 'CANCEL', error?: string): Promise<SyncResult> {
  const { repository } = run;
  const status = await withTransaction(run.deps.db, (tx) => releaseMirror(tx, run.mirror.id, run.claimId, outcome, new Date(), error));
  const labels = { namespace: repository.namespace, repository: repository.name };
  m.syncsTotal.inc({ outcome: outcome.toLowerCase() });
  m.syncComplete.set(outcome === 'SUCCESS' ? 1 : 0);
  m.lastSyncTimestamp.set(Date.now() / 1000);
  m.lastSyncStatus.remove({ ...labels, last_error_reason: '' });
  if (outcome === 'SUCCESS') {
    m.lastSuccess.labels(labels).set(Date.now() / 1000);
    m.lastSyncStatus.labels({ ...labels, last_error_reason: '' }).set(1);
  } else if (outcome === 'FAIL') {
    const reason = m.failureReason(error ?? '');
    m.syncFailures.labels({ namespace: repository.namespace, reason }).inc();
    m.lastSyncStatus.labels({ ...labels, last_error_reason: reason }).set(0);
  }
  run.log.info({ outcome, status, error }, 'mirror sync finished');
  return status === undefined ? 'interrupted' : outcome;
}

async function failEarly(run: Run, message: string, detail?: string): Promise<SyncResult> {
  await event(run, { kind: 'repo_mirror_sync_failed', verb: 'end', message, stderr: detail ?? null, notify: run.finalAttempt });
  return finish(run, 'FAIL', detail ?? message);
}

async function syncClaimed(run: Run): Promise<SyncResult> {
  const { mirror, deps } = run;
  const reference = await validateExternalReference(mirror.external_reference, { allowedHosts: deps.config.quay.SSRF_ALLOWED_HOSTS, resolve: true })
    .catch((error: Error) => error);
  if (reference instanceof Error) return failEarly(run, 'Source registry location is not allowed', reference.message);
  const what = `'${mirror.external_reference}' with tag pattern '${run.patterns}'`;
  // Logged on every attempt, as Quay; notified once per sync.
  await event(run, { kind: 'repo_mirror_sync_started', verb: 'start', message: what, notify: run.firstAttempt });
  let credentials: { username?: string; password?: string };
  try {
    credentials = decryptCredentials(deps.config, mirror);
  } catch (error) {
    return failEarly(run, `${what}: INTERNAL ERROR`, (error as Error).message);
  }
  const upstream = newUpstream(run, reference, credentials);
  try {
    let selected: string[];
    try {
      const rule = compileRule(mirror.rule_type ?? 1, mirror.rule_value);
      // Quay runs `skopeo list-tags` under skopeo_timeout too.
      const deadline = AbortSignal.timeout(timeoutMs(mirror));
      selected = tagsToMirror(rule, await upstream.listTags(deadline).catch((error: unknown) => {
        if (deadline.aborted && !run.abort.signal.aborted) throw new Error(`listing tags did not finish within skopeo_timeout (${mirror.skopeo_timeout} s)`);
        throw error;
      }));
    } catch (error) {
      if (run.abort.signal.aborted) return await interrupted(run);
      const message = (error as Error).message;
      return await failEarly(run, `${what}: listing tags failed`, message);
    }
    if (selected.length === 0) {
      // Quay: nothing matched is a success, and local tags are left alone (PR #5852 was not merged).
      await event(run, { kind: 'repo_mirror_sync_success', verb: 'end', message: what, tags: 'No tags matched', notify: true });
      return await finish(run, 'SUCCESS');
    }
    return await copyAll(run, upstream, selected, what);
  } finally {
    upstream.close();
  }
}

/** Quay's per-command limit: `skopeo_timeout` seconds (the API keeps it at 300 or more). */
function timeoutMs(mirror: MirrorConfigRow): number {
  return Math.max(1, mirror.skopeo_timeout) * 1000;
}

function newUpstream(run: Run, reference: ExternalReference, credentials: { username?: string; password?: string }): UpstreamRepository {
  const { mirror, deps } = run;
  const registryConfig = mirror.external_registry_config ?? {};
  const extraCaDir = run.settings.extraCaDir ?? extraCaDirOf(deps.config);
  return new UpstreamRepository({
    reference, ...credentials, verifyTls: registryConfig.verify_tls !== false, proxy: registryConfig.proxy,
    caFor: (url) => extraCaFor(extraCaDir, url), ssrf: { allowedHosts: deps.config.quay.SSRF_ALLOWED_HOSTS, blockedHostnames: [] },
    idleTimeoutMs: run.settings.idleTimeoutMs, signal: run.abort.signal, onRequest: run.settings.onUpstreamRequest,
  });
}

function decryptCredentials(config: Config, mirror: MirrorConfigRow): { username?: string; password?: string } {
  if (!mirror.external_registry_username && !mirror.external_registry_password) return {};
  const key = config.quay.DATABASE_SECRET_KEY;
  if (!key) throw new DecryptionFailureError('DATABASE_SECRET_KEY is not set');
  const encrypter = new FieldEncrypter(key);
  return {
    ...(mirror.external_registry_username ? { username: encrypter.decrypt(mirror.external_registry_username) } : {}),
    ...(mirror.external_registry_password ? { password: encrypter.decrypt(mirror.external_registry_password) } : {}),
  };
}

async function interrupted(run: Run): Promise<SyncResult> {
  // Shutdown: let the lease lapse now so the next tick (on any replica) takes the mirror over.
  const status = await mirrorStatus(run.deps.db, run.mirror.id);
  if (status?.status === RepoMirrorStatus.CANCEL) return finish(run, 'CANCEL');
  await renewMirrorLease(run.deps.db, run.mirror.id, run.claimId, new Date());
  run.log.info({ reason: String(run.abort.signal.reason) }, 'mirror sync interrupted; the lease lapses for the next tick');
  return 'interrupted';
}

async function cancelled(run: Run): Promise<boolean> {
  const status = await mirrorStatus(run.deps.db, run.mirror.id);
  return status?.status === RepoMirrorStatus.CANCEL || status?.claimId !== run.claimId;
}

async function copyAll(run: Run, upstream: UpstreamRepository, selected: string[], what: string): Promise<SyncResult> {
  const { deps, repository, mirror } = run;
  const labels = { namespace: repository.namespace, repository: repository.name };
  const target: MirrorTarget = { repository, robotId: mirror.internal_robot_id, robotName: mirror.robot_username };
  const snapshot: TagSnapshot = await snapshotTags(deps.db, repository.id);
  const ctx: CopyContext = newCopyContext({
    deps, target, upstream, architectures: mirror.architecture_filter ?? [], perSyncLimit: run.settings.blobsPerSync,
    perWorker: run.settings.perWorker, signal: run.abort.signal,
  });
  const failed: string[] = [];
  let outcome: 'SUCCESS' | 'FAIL' | 'CANCEL' = 'SUCCESS';
  let internalError: string | undefined;
  m.lagTags.labels(labels).set(selected.length);
  m.pendingTags.labels(labels).set(selected.length);
  try {
    const ended = await applyTags(ctx, selected, {
      ahead: Math.max(0, run.settings.tagsAhead ?? 3),
      tagTimeoutMs: timeoutMs(mirror),
      timeoutMessage: (tag) => `copying tag ${tag} did not finish within skopeo_timeout (${mirror.skopeo_timeout} s)`,
      turn: async () => {
        if (run.abort.signal.aborted && !(await cancelled(run))) return 'interrupt';
        return (await cancelled(run)) ? 'cancel' : 'go';
      },
      recordSuccess: (tx, tag, result) => writeMirrorEvent(tx, deps.config, repository, {
        kind: 'repo_mirror_sync_tag_success', verb: 'finish', message: `${what}: ${result}`, tag, notify: false,
      }),
      recordFailure: async (tag, error) => {
        failed.push(tag);
        run.log.warn({ tag, err: error }, 'mirror tag failed');
        await event(run, { kind: 'repo_mirror_sync_tag_failed', verb: 'finish', message: what, tag, stderr: error.message, notify: false });
      },
      progress: (done) => {
        m.pendingTags.labels(labels).set(selected.length - done);
        m.lagTags.labels(labels).set(selected.length - done + failed.length);
      },
    });
    if (ended === 'interrupt') return await interrupted(run);
    if (ended === 'cancel') outcome = 'CANCEL';
    if (run.abort.signal.aborted && outcome !== 'CANCEL' && !(await cancelled(run))) return interrupted(run);
    if (failed.length > 0 && outcome === 'SUCCESS') outcome = 'FAIL';
    // Quay deletes obsolete tags after a cancel or a partial failure too.
    const keep = new Set(selected);
    await deleteTags(deps, target, (await aliveTagNames(deps.db, repository.id)).filter((t) => !keep.has(t)));
  } catch (error) {
    if (run.abort.signal.aborted && !(await cancelled(run))) return interrupted(run);
    outcome = 'FAIL';
    internalError = (error as Error).message;
    run.log.error({ err: error }, 'mirror sync failed');
  } finally {
    m.pendingTags.labels(labels).set(0);
    m.tagsCopied.inc(ctx.stats.tagsCopied);
    m.bytesCopied.inc(ctx.stats.bytesCopied);
    m.blobsSkipped.inc(ctx.stats.blobsSkipped);
  }
  run.log.info({ ...ctx.stats, selected: selected.length, failed: failed.length }, 'mirror copy done');
  return conclude(run, { outcome, failed, selected, what, internalError, snapshot });
}

async function conclude(
  run: Run, r: { outcome: 'SUCCESS' | 'FAIL' | 'CANCEL'; failed: string[]; selected: string[]; what: string; internalError?: string | undefined; snapshot: TagSnapshot },
): Promise<SyncResult> {
  const failedSet = new Set(r.failed);
  const tags = r.selected.map((t) => (failedSet.has(t) ? `${t}(FAILED)` : t)).join(', ');
  if (r.outcome === 'CANCEL') {
    await event(run, { kind: 'repo_mirror_sync_failed', verb: 'Cancelled', message: r.what, tags, notify: true });
    return finish(run, 'CANCEL');
  }
  if (r.outcome === 'FAIL') {
    const rollback = run.deps.config.quay.REPO_MIRROR_ROLLBACK;
    if (rollback) await rollbackTags(run.deps, { repository: run.repository, robotId: run.mirror.internal_robot_id }, r.snapshot);
    const partial = !rollback && r.failed.length > 0 && r.failed.length < r.selected.length ? ': PARTIAL SYNC' : '';
    const message = `${r.what}${r.internalError ? ': INTERNAL ERROR' : partial}`;
    await event(run, { kind: 'repo_mirror_sync_failed', verb: 'lost', message, tags, stderr: r.internalError ?? null, notify: run.finalAttempt });
    return finish(run, 'FAIL', r.internalError ?? `${r.failed.length} of ${r.selected.length} tags failed`);
  }
  await event(run, { kind: 'repo_mirror_sync_success', verb: 'end', message: r.what, tags, notify: true });
  return finish(run, 'SUCCESS');
}
