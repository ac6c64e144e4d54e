/**
 * Upload commit intents (`uploadcommitintent`): the durable note a push writes, and commits,
 * before it moves an upload's bytes to their content address. The transaction that records the
 * blob deletes the note; a note that outlives its `resolve_after` belongs to a push that died
 * between the move and the commit, and GC resolves it (`gc/upload-intents.ts`). So an object at a
 * content address always has a row, a pending deletion or an intent: it can never leak.
 */
import type { Queryable } from './pool.ts';

/** One intent as written by the push. */
export interface UploadIntentInput {
  readonly locationId: number;
  readonly digest: string;
  /** The content-address key the bytes are about to be moved to. */
  readonly objectKey: string;
  readonly sizeBytes: number;
  /** When GC may resolve it: the end of the upload's lease. */
  readonly resolveAfter: Date;
}

/** Records an intent (call outside the blob's transaction, and let it commit first); returns its id. */
export async function recordUploadIntent(db: Queryable, input: UploadIntentInput): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO uploadcommitintent (location_id, content_checksum, object_key, size_bytes, resolve_after)
     VALUES ($1, $2, $3, $4, $5) RETURNING id`,
    [input.locationId, input.digest, input.objectKey, input.sizeBytes, input.resolveAfter]);
  return rows[0]!.id;
}

/**
 * Deletes intent `id` in the transaction that records the blob (holding the digest lock). False
 * when GC already resolved it: the push then must not move its bytes into place.
 */
export async function settleUploadIntent(tx: Queryable, id: number): Promise<boolean> {
  const { rowCount } = await tx.query(`DELETE FROM uploadcommitintent WHERE id = $1`, [id]);
  return rowCount === 1;
}
