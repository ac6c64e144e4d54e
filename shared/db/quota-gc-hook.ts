/**
 * The quota side of GC (reference §3.2): GC calls `subtractManifestQuota` inside the transaction
 * that deletes manifests, after their `manifestblob` rows are gone and before the manifests
 * themselves, exactly where Quay calls `update_quota(..., SUBTRACT)`. The quota issue fills the
 * body (its namespace lock, the "referenced elsewhere?" rule, the running totals); until then it
 * is a documented no-op so GC's transactions already have the right shape.
 */
import type { Queryable } from './pool.ts';

/** One manifest GC removed and the blobs it linked, with their compressed sizes. */
export interface CollectedManifest {
  readonly manifestId: number;
  readonly blobs: readonly { readonly blobId: number; readonly sizeBytes: number }[];
}

/** What one GC transaction removed from one repository. */
export interface QuotaSubtraction {
  readonly namespaceId: number;
  readonly repositoryId: number;
  readonly manifests: readonly CollectedManifest[];
}

/**
 * Subtracts the bytes of collected manifests from the repository's and namespace's running
 * totals, in the caller's transaction `tx` (the blob links are already deleted, so "is this blob
 * still referenced by another manifest?" sees the post-GC state). Must not commit or roll back.
 * Currently a no-op: the quota issue implements it.
 */
export async function subtractManifestQuota(_tx: Queryable, _subtraction: QuotaSubtraction): Promise<void> {
  // Intentionally empty until the quota issue lands its accounting.
}
