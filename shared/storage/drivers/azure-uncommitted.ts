/**
 * Staged blocks nobody will commit. A multipart write stages its parts as blocks on the target blob
 * (`azure-multipart.ts`) and a streamed put stages blocks before Put Block List; a write that is
 * aborted or whose process dies leaves them, and Azure keeps them (billed) for a week. No API
 * deletes uncommitted blocks: committing an empty block list discards them all, and deleting the
 * then empty blob leaves nothing. That is safe only on a blob with no committed content, so:
 *
 * - only blobs the listing shows with `includeUncommitedBlobs` whose block list has uncommitted
 *   blocks and no committed ones, and that do not exist as a committed (possibly empty) blob, are
 *   candidates;
 * - the empty commit is conditional on `If-None-Match: *`: if a committed blob exists by then (a
 *   write completed meanwhile) the service refuses it (409) and the blob is kept;
 * - the delete is conditional on the empty commit's ETag, so a write committed in between stays.
 *
 * Age. Block lists carry no dates, and the listing's times for an uncommitted blob are those of its
 * first staged block (Azurite; Azure documents none), which say nothing about whether the write is
 * still going. A multipart block's id names its upload, whose marker is created before the first
 * block and deleted only when the upload completes or is aborted; the stale-multipart step aborts
 * markers older than the threshold. So a multipart block is discarded exactly when its upload has no
 * marker (it ended; nothing can commit it), and a live upload of any age, which keeps its marker,
 * is never touched. Blocks of any other id (a streamed put: one request, minutes at most) are judged
 * by the listing's time of the first block against the threshold.
 */
import type { UncommittedBlob } from '../types.ts';
import type { AzureStore } from './azure.ts';
import type { AzureMultipart } from './azure-multipart.ts';

const MULTIPART_BLOCK = /^([0-9a-f]{32})-\d{5}$/;

/** The uncommitted-block half of the Azure driver. */
export class AzureUncommitted {
  constructor(private readonly store: AzureStore, private readonly multipart: AzureMultipart) {}

  async *list(prefix: string, olderThan: Date): AsyncIterable<UncommittedBlob> {
    const { store } = this;
    const pages = store.container.listBlobsFlat({ prefix: store.keys.toBackend(prefix), includeUncommitedBlobs: true }).byPage({ maxPageSize: store.listPageSize });
    try {
      for await (const page of pages) {
        for (const item of page.segment.blobItems) {
          // Committed content has a length; an uncommitted-only blob lists as 0 bytes.
          if ((item.properties.contentLength ?? 0) > 0) continue;
          const key = store.keys.fromBackend(item.name);
          if (key === undefined) continue;
          const blob = await this.judge(key, item.properties.createdOn ?? item.properties.lastModified, olderThan);
          if (blob) yield blob;
        }
      }
    } catch (error) {
      throw store.error(error, 'listUncommittedBlobs', prefix);
    }
  }

  async discard(candidate: UncommittedBlob, olderThan: Date): Promise<number | undefined> {
    const { store } = this;
    const client = store.blob(candidate.key);
    try {
      // The block list may have changed since the listing: judge again right before discarding.
      const blob = await this.judge(candidate.key, candidate.at, olderThan);
      if (!blob) return undefined;
      let etag: string | undefined;
      try {
        etag = (await client.commitBlockList([], { conditions: { ifNoneMatch: '*' } })).etag;
      } catch (error) {
        if (statusOf(error) === 409 || statusOf(error) === 412) return undefined; // committed meanwhile
        throw error;
      }
      try {
        await client.deleteIfExists({ conditions: { ifMatch: etag } });
      } catch (error) {
        if (statusOf(error) !== 412) throw error; // 412: a write committed over the empty blob
      }
      return blob.bytes;
    } catch (error) {
      throw store.error(error, 'discardUncommittedBlob', candidate.key);
    }
  }

  /** The blob when it has only uncommitted blocks and all of them are abandoned, else undefined. */
  private async judge(key: string, at: Date, olderThan: Date): Promise<UncommittedBlob | undefined> {
    let list;
    try {
      list = await this.store.blob(key).getBlockList('all');
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
    const blocks = list.uncommittedBlocks ?? [];
    if ((list.committedBlocks ?? []).length > 0 || blocks.length === 0) return undefined;
    // A committed empty blob (Put Blob of 0 bytes) has no committed blocks either; it exists.
    if (await this.store.blob(key).exists()) return undefined;
    const uploads = new Set<string>();
    let foreign = false;
    for (const block of blocks) {
      const upload = MULTIPART_BLOCK.exec(Buffer.from(block.name, 'base64').toString())?.[1];
      if (upload) uploads.add(upload);
      else foreign = true;
    }
    if (foreign && at >= olderThan) return undefined;
    for (const upload of uploads) if (await this.multipart.hasMarker(upload)) return undefined;
    return { key, at, blocks: blocks.length, bytes: blocks.reduce((sum, block) => sum + block.size, 0) };
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number } | undefined)?.statusCode;
}
