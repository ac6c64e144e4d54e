/**
 * The quota side of GC (reference §3.2): GC calls `subtractManifestQuota` inside the transaction
 * that deletes manifests, after their `manifestblob` rows are gone and before the manifests
 * themselves, exactly where Quay calls `update_quota(..., SUBTRACT)`. The quota module
 * (quota/accounting.ts) takes the namespace quota lock, lowers the reference counts and subtracts
 * each blob whose last link in the repository (or namespace) went.
 */
import type { Queryable } from './pool.ts';
import { recordManifestsCollected } from './quota/accounting.ts';

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
 * totals, in the caller's transaction `tx` (the blob links are already deleted). Must not commit
 * or roll back.
 */
export async function subtractManifestQuota(tx: Queryable, subtraction: QuotaSubtraction): Promise<void> {
  await recordManifestsCollected(tx, {
    namespaceId: subtraction.namespaceId,
    repositoryId: subtraction.repositoryId,
    manifests: subtraction.manifests.map((m) => ({ blobs: m.blobs.map((b) => ({ id: b.blobId, size: b.sizeBytes })) })),
  });
}
