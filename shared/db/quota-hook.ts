/**
 * The point where quota accounting joins the push path. The front end's manifest PUT calls it
 * inside its transaction, after the manifest and its blob links are written: the quota module
 * (quota/accounting.ts) adds each new blob once per repository and once per namespace, leaves
 * totals that are not complete to the backfill, and refuses a tag push that leaves the namespace
 * at or over a Reject limit by throwing QuotaExceededError (quota/enforcement.ts), which rolls
 * the whole push back.
 */
import type { Config } from '../config/index.ts';
import type { Queryable } from './pool.ts';
import { recordManifestAdded } from './quota/accounting.ts';

/** What a manifest push adds, as the quota accounting needs it. */
export interface ManifestBlobsAdded {
  readonly namespaceId: number;
  readonly repositoryId: number;
  readonly manifestId: number;
  /** Whether this push created the manifest (false: it existed and only a tag moved). */
  readonly manifestCreated: boolean;
  /** Whether the push names a tag (a push by digest is never refused for quota, as in Quay). */
  readonly tagged: boolean;
  /** The manifest's blobs (config and layers) with their sizes in bytes; duplicates are ignored. */
  readonly blobs: readonly { readonly id: number; readonly size: number }[];
}

/**
 * Adds the manifest's blobs to the namespace and repository totals in `tx` (must not commit or
 * roll back); throws QuotaExceededError when a tag push is over a Reject limit.
 */
export async function onManifestBlobsAdded(tx: Queryable, added: ManifestBlobsAdded, config: Config): Promise<void> {
  await recordManifestAdded(tx, added, config);
}
