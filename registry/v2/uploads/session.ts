/**
 * Upload sessions as requests see them: lookup, the headers that describe a session, and the claim
 * a request holds while it appends (renewed while bytes stream, so a slow client keeps it and a
 * crashed process loses it after CLAIM_MS).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import {
  claimUpload, getUpload, releaseUploadClaim, renewUploadClaim, type UploadRow,
} from '../../../shared/db/uploads.ts';
import { OciError } from '../../errors.ts';
import type { V2Context } from '../context.ts';
import { repositoryPath, type RepositoryName } from '../paths.ts';

/** How long a claim lasts without renewal, in ms. */
export const CLAIM_MS = 60_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The session id of a path, or BLOB_UPLOAD_UNKNOWN when it cannot be one. */
export function parseUploadUuid(value: string): string {
  if (!UUID.test(value)) throw new OciError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: value });
  return value;
}

/** The session `uuid` of the repository, or BLOB_UPLOAD_UNKNOWN. */
export async function loadUpload(ctx: V2Context, repositoryId: number, uuid: string): Promise<UploadRow> {
  const row = await getUpload(ctx.deps.db, repositoryId, uuid);
  if (!row) throw new OciError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid });
  return row;
}

/** The `Range` value of a session holding `byteCount` bytes (distribution's `0-<last>`, `0-0` when empty). */
export function uploadRange(byteCount: number): string {
  return `0-${Math.max(0, byteCount - 1)}`;
}

/** Sets the headers that describe a session: Location, Range, Docker-Upload-UUID. */
export function setUploadHeaders(reply: FastifyReply, name: RepositoryName, uuid: string, byteCount: number): FastifyReply {
  return reply
    .header('Location', `${repositoryPath(name)}/blobs/uploads/${uuid}`)
    .header('Range', uploadRange(byteCount))
    .header('Docker-Upload-UUID', uuid)
    .header('Content-Length', '0');
}

/** A claim held by one request. */
export interface UploadClaim {
  readonly token: string;
  /** Aborted when the claim could not be renewed (another request took the session over). */
  readonly signal: AbortSignal;
}

/**
 * Runs `work` holding the claim on session `uuid`. When given, `byteCount` must equal the bytes
 * the session holds (the start of the client's Content-Range): else 416 with the session's Range.
 * A session busy with another request answers BLOB_UPLOAD_INVALID. The claim is released when
 * `work` throws; on success `work` releases it by saving its progress (or deleting the session).
 */
export async function withUploadClaim<T>(
  ctx: V2Context, input: { name: RepositoryName; repositoryId: number; uuid: string; byteCount?: number },
  work: (row: UploadRow, claim: UploadClaim) => Promise<T>,
): Promise<T> {
  const { db } = ctx.deps;
  const token = randomUUID();
  const row = await claimUpload(db, { ...input, token, nowMs: ctx.now(), untilMs: ctx.now() + CLAIM_MS });
  if (!row) throw await refusal(ctx, input);
  const lost = new AbortController();
  const timer = setInterval(() => {
    renewUploadClaim(db, { uuid: input.uuid, token, untilMs: ctx.now() + CLAIM_MS })
      .then((held) => held || lost.abort(new OciError('BLOB_UPLOAD_INVALID', 'the upload was taken over by another request')))
      .catch(() => undefined); // a database hiccup: the claim still has time left
  }, CLAIM_MS / 3);
  timer.unref();
  try {
    return await work(row, { token, signal: lost.signal });
  } catch (error) {
    await releaseUploadClaim(db, { uuid: input.uuid, token }).catch(() => undefined);
    throw error;
  } finally {
    clearInterval(timer);
  }
}

async function refusal(ctx: V2Context, input: { name: RepositoryName; repositoryId: number; uuid: string; byteCount?: number }): Promise<OciError> {
  const current = await loadUpload(ctx, input.repositoryId, input.uuid);
  const headers = {
    Range: uploadRange(current.byte_count), 'Docker-Upload-UUID': input.uuid,
    Location: `${repositoryPath(input.name)}/blobs/uploads/${input.uuid}`,
  };
  if (input.byteCount !== undefined && input.byteCount !== current.byte_count) {
    return new OciError('RANGE_INVALID', 'chunk does not start where the upload ends', { expectedStart: current.byte_count }, { status: 416, headers });
  }
  return new OciError('BLOB_UPLOAD_INVALID', 'the upload is busy with another request', null, { headers });
}
