/**
 * One request's bytes into an upload session: the running hash (when this process has it), the
 * body reader, the part mapping (writer.ts), and the translation of failures into the client's
 * fault (SIZE_INVALID, BLOB_UPLOAD_INVALID) or a vanished session (BLOB_UPLOAD_UNKNOWN).
 */
import type { Hash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { UploadRow } from '../../../shared/db/uploads.ts';
import { getUpload } from '../../../shared/db/uploads.ts';
import { NotFoundError } from '../../../shared/storage/errors.ts';
import type { ObjectStore } from '../../../shared/storage/types.ts';
import { OciError } from '../../errors.ts';
import { imagePushedBytes } from '../../metrics.ts';
import type { V2Context } from '../context.ts';
import { arrivalChunks, BodyReader } from './body-reader.ts';
import type { UploadClaim } from './session.ts';
import { appendToUpload, type AppendOutcome } from './writer.ts';

/** Bytes of a body of unknown length buffered per part (S3's minimum is 5 MiB). */
export const UNKNOWN_LENGTH_PART_BYTES = 8 * 1024 * 1024;

/** What the client says the body carries. */
export interface DeclaredBody {
  /** Content-Range start, when sent. */
  readonly start?: number;
  /** Exact byte count (Content-Range or Content-Length), when known. */
  readonly length?: number;
}

export interface AppendResult {
  /** The session's location and its store. */
  readonly location: string;
  readonly store: ObjectStore;
  readonly outcome: AppendOutcome;
  /** Bytes this request carried. */
  readonly received: number;
  /** The session's running hash after this request, when this process holds it. */
  readonly hash: Hash | undefined;
}

/** The store a session writes to. */
export async function sessionStore(ctx: V2Context, row: UploadRow): Promise<{ store: ObjectStore; location: string }> {
  const location = (await ctx.locations()).nameOf(row.location_id);
  if (location === undefined) throw new Error(`upload ${row.uuid} writes to a location this process does not configure (${row.location_id})`);
  return { store: ctx.deps.storage.store(location), location };
}

/**
 * Appends the request body to the claimed session `row`. When it fails nothing is recorded: what
 * it wrote is referenced by no session state, and the next request overwrites or the sweep deletes it.
 */
export async function appendBody(
  ctx: V2Context, request: FastifyRequest, row: UploadRow, claim: UploadClaim, declared: DeclaredBody, final: boolean,
): Promise<AppendResult> {
  const { store, location } = await sessionStore(ctx, row);
  const hash = ctx.hashes.take(row.uuid, row.byte_count);
  const reader = new BodyReader(arrivalChunks(request.raw), (chunk) => {
    hash?.update(chunk);
    imagePushedBytes.inc(chunk.length);
  }, claim.signal);
  let outcome: AppendOutcome;
  try {
    outcome = await appendToUpload({
      store, uuid: row.uuid, state: row.storage, reader, length: declared.length, final,
      partBytes: Math.max(UNKNOWN_LENGTH_PART_BYTES, store.minPartBytes),
    });
  } catch (error) {
    throw await appendFailure(ctx, row, reader.failure, error);
  }
  return { location, store, outcome, received: reader.received, hash };
}

// A client fault wins over the storage error it caused; a session deleted meanwhile is unknown.
async function appendFailure(ctx: V2Context, row: UploadRow, clientFault: Error | undefined, error: unknown): Promise<unknown> {
  if (clientFault) return clientFault;
  if (error instanceof OciError) return error;
  if (error instanceof NotFoundError && !(await getUpload(ctx.deps.db, row.repository_id, row.uuid))) {
    return new OciError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: row.uuid });
  }
  return error;
}

/**
 * The body the client declares: Content-Range (`<start>-<end>`, optionally `bytes ` and `/<total>`)
 * and Content-Length, which must agree. 416 for a malformed Content-Range, SIZE_INVALID when the
 * two disagree.
 */
export function declaredBody(request: FastifyRequest): DeclaredBody {
  const contentLength = request.headers['content-length'];
  const length = contentLength === undefined ? undefined : Number(contentLength);
  const rangeHeader = request.headers['content-range'];
  if (rangeHeader === undefined) return length === undefined ? {} : { length };
  const match = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(rangeHeader.trim());
  const start = Number(match?.[1]);
  const end = Number(match?.[2]);
  if (!match || end < start || !Number.isSafeInteger(end)) {
    throw new OciError('RANGE_INVALID', 'malformed Content-Range', { contentRange: rangeHeader }, { status: 416 });
  }
  const rangeLength = end - start + 1;
  if (length !== undefined && length !== rangeLength) {
    throw new OciError('SIZE_INVALID', 'Content-Length does not match Content-Range', { contentLength: length, contentRange: rangeHeader });
  }
  return { start, length: rangeLength };
}
