/**
 * The point where quota accounting joins the push path. Called inside the manifest PUT transaction
 * after the manifest and its blob links are written, with the manifest's blobs; the quota work
 * (reference/quay-gc-quota-queue.md §3.2: add each blob once per namespace and once per repository,
 * write totals, or leave them to the backfill) fills this in. Until then it records nothing.
 */
import type { Queryable } from './pool.ts';

/** What a manifest push adds, as the quota accounting needs it. */
export interface ManifestBlobsAdded {
  readonly namespaceId: number;
  readonly repositoryId: number;
  readonly manifestId: number;
  /** Whether this push created the manifest (false: it existed and only a tag moved). */
  readonly manifestCreated: boolean;
  /** The manifest's distinct blobs (config and layers) with their sizes in bytes. */
  readonly blobs: readonly { readonly id: number; readonly size: number }[];
}

/** Adds the manifest's blobs to the namespace and repository totals. Currently a no-op. */
export async function onManifestBlobsAdded(_tx: Queryable, _added: ManifestBlobsAdded): Promise<void> {
  // Intentionally empty: the quota issue implements the running totals here.
}
