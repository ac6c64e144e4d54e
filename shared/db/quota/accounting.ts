/**
 * Running totals on the push and GC paths (reference §3.2), race-free:
 * - a push adds its new manifest's blobs through the reference counts (references.ts), so a blob
 *   counts once per repository and once per namespace however many manifests and tags share it,
 *   and two concurrent pushes of one new blob add it once;
 * - GC subtracts when it deletes a manifest's blob links, and a blob leaves a total only when its
 *   last link in that repository (or namespace) goes;
 * - totals that are not complete are left alone, and every running update holds the namespace
 *   quota lock (locks.ts) until it commits, so the backfill sees each update either committed
 *   (and counts it from scratch) or not yet applied (and the update then finds complete totals).
 * A tag push is refused inside the same transaction when it leaves the namespace at or over a
 * Reject limit, and a threshold newly reached enqueues its quota notification.
 */
import type { Config } from '../../config/index.ts';
import type { Queryable } from '../pool.ts';
import { QuotaExceededError } from './enforcement.ts';
import { checkLimits, effectiveLimits } from './limits.ts';
import { lockForRunningUpdate, lockNamespaceTotalsExclusive, lockNamespaceTotalsShared } from './locks.ts';
import { quotaRejections } from './metrics.ts';
import { crossedThresholds, notifyThresholds, rearmOwnQuotaThresholds } from './notifications.ts';
import { applyPushedBlobs, type PushUpdate } from './push-update.ts';
import { distinctBlobs, removeBlobReferences, type SizedBlob, type UnlinkedBlob } from './references.ts';
import { enforcing, quotaSettings, type QuotaSettings } from './settings.ts';
import {
  applyDeltas, markNamespaceStale, namespaceHasOtherManifests, namespaceTotalsState, startNamespaceTotals,
} from './totals.ts';

/** A manifest push as accounting sees it. */
export interface ManifestAdded {
  readonly namespaceId: number;
  readonly repositoryId: number;
  readonly manifestId: number;
  /** Whether this push created the manifest (and its blob links). */
  readonly manifestCreated: boolean;
  /** Whether the push names a tag (only tag pushes are checked against limits, as in Quay). */
  readonly tagged: boolean;
  readonly blobs: readonly SizedBlob[];
}

/** Manifests GC removed from one repository, with the blobs each linked. */
export interface ManifestsCollected {
  readonly namespaceId: number;
  readonly repositoryId: number;
  readonly manifests: readonly { readonly blobs: readonly SizedBlob[] }[];
}

/**
 * Records a manifest push in the caller's transaction (after its blob links were written); throws
 * QuotaExceededError for a tag push that leaves the namespace at or over a Reject limit.
 */
export async function recordManifestAdded(tx: Queryable, added: ManifestAdded, config: Config): Promise<void> {
  const settings = quotaSettings(config);
  const blobs = added.manifestCreated ? distinctBlobs(added.blobs) : [];
  if (!settings.enabled) {
    if (blobs.length > 0 && settings.invalidateTotals) await invalidateTotals(tx, added.namespaceId);
    return;
  }
  const checking = added.tagged && enforcing(settings);
  if (blobs.length === 0 && !checking) return;
  const update = await addToTotals(tx, added, blobs);
  if (!update?.complete) return; // not maintained: the backfill will count this push
  if (!checking && update.after <= update.before) return;
  const limits = effectiveLimits(update.quota, settings);
  if (checking && checkLimits(limits, update.after).rejected) {
    quotaRejections.inc({ stage: 'manifest' });
    throw new QuotaExceededError(added.namespaceId, update.after);
  }
  await notifyOnCrossing(tx, added.namespaceId, update, limits, settings);
}

/**
 * Subtracts what GC collected, in GC's transaction after the blob links were deleted. Needs no
 * config: totals that are complete are kept exact whether or not quota management is on now
 * (a push with it off marks them stale first).
 */
export async function recordManifestsCollected(tx: Queryable, collected: ManifestsCollected): Promise<void> {
  const links = new Map<number, { size: number; links: number }>();
  for (const manifest of collected.manifests) {
    for (const blob of distinctBlobs(manifest.blobs)) {
      const entry = links.get(blob.id) ?? { size: blob.size, links: 0 };
      entry.links++;
      links.set(blob.id, entry);
    }
  }
  if (links.size === 0) return;
  await lockNamespaceTotalsShared(tx, collected.namespaceId);
  if ((await namespaceTotalsState(tx, collected.namespaceId)) !== 'complete') return;
  const blobs: UnlinkedBlob[] = [...links].map(([id, entry]) => ({ id, ...entry }));
  const deltas = await removeBlobReferences(tx, collected, blobs);
  const after = await applyDeltas(tx, collected, deltas);
  if (after !== undefined && deltas.namespaceBytes < 0) await rearmOwnQuotaThresholds(tx, collected.namespaceId, after);
}

/**
 * Adds the blobs under the right lock: shared when the namespace has a totals row (complete or
 * waiting for its backfill), exclusive when it has none, to start its totals if this is its only
 * manifest. Undefined when the totals are not maintained.
 */
async function addToTotals(tx: Queryable, added: ManifestAdded, blobs: readonly SizedBlob[]): Promise<PushUpdate | undefined> {
  const target = { namespaceId: added.namespaceId, repositoryId: added.repositoryId };
  if ((await lockForRunningUpdate(tx, added.namespaceId)) === 'missing') {
    await lockNamespaceTotalsExclusive(tx, added.namespaceId);
    const state = await namespaceTotalsState(tx, added.namespaceId);
    if (state === 'waiting') return undefined;
    if (state === 'missing') {
      // Any other manifest is committed (or its pusher holds this lock): the backfill must count it.
      if (!added.manifestCreated || (await namespaceHasOtherManifests(tx, added.namespaceId, added.manifestId))) return undefined;
      await startNamespaceTotals(tx, added.namespaceId);
    }
  }
  return applyPushedBlobs(tx, target, blobs);
}

// Quay's reset_backfill: with quota management off, a push makes the namespace's totals stale.
// This runs on every push of a registry that never turned quota on, so it is one prepared
// statement there: no totals row, no lock, nothing to mark (a backfill only computes a namespace
// QUOTA_TOTAL_DELAY_SECONDS after it got its row, long after any push that raced that row). With
// a row, the shared lock makes a backfill from a pod with quota on wait for this push to commit.
async function invalidateTotals(tx: Queryable, namespaceId: number): Promise<void> {
  if ((await lockForRunningUpdate(tx, namespaceId)) === 'complete') await markNamespaceStale(tx, namespaceId);
}

async function notifyOnCrossing(
  tx: Queryable, namespaceId: number, usage: { before: number; after: number },
  limits: ReturnType<typeof effectiveLimits>, settings: QuotaSettings,
): Promise<void> {
  if (!settings.notifications) return;
  const crossed = crossedThresholds(limits, usage.before, usage.after);
  if (crossed.length > 0) await notifyThresholds(tx, { namespaceId, usageBytes: usage.after, limits }, crossed, settings.notificationCooldownS);
}
