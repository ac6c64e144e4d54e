/**
 * The running sha256 of upload sessions, kept in this process between the requests of a session.
 *
 * Node's hash state cannot be serialized, so it cannot live in `blobupload.sha_state`. A session's
 * requests usually reach the same process one after another; when one does not (a restart, another
 * replica, a failed request), the state is missing and the upload is verified once at completion
 * by streaming the assembled object back from storage (see complete.ts). Chunks are never re-read
 * mid-session: a multipart write's parts cannot be read back on most backends anyway.
 */
import { createHash, type Hash } from 'node:crypto';

/** A bounded map from session uuid to the hash of its first `offset` bytes. */
export class UploadHashes {
  private readonly entries = new Map<string, { hash: Hash; offset: number }>();

  constructor(private readonly maxEntries = 10_000) {}

  /**
   * Removes and returns the hash of session `uuid` if it covers exactly its first `offset` bytes
   * (a fresh hash at offset 0); undefined when this process does not know the state.
   */
  take(uuid: string, offset: number): Hash | undefined {
    const entry = this.entries.get(uuid);
    this.entries.delete(uuid);
    if (offset === 0) return createHash('sha256');
    return entry?.offset === offset ? entry.hash : undefined;
  }

  /** Keeps `hash` as covering the first `offset` bytes of session `uuid`; evicts the oldest beyond the bound. */
  put(uuid: string, hash: Hash, offset: number): void {
    this.entries.delete(uuid);
    this.entries.set(uuid, { hash, offset });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** Forgets session `uuid`. */
  drop(uuid: string): void {
    this.entries.delete(uuid);
  }
}
