/**
 * `GET`/`HEAD /v2/<name>/blobs/<digest>`: a blob linked to the repository (a manifest link or a
 * live upload lease), streamed from the most preferred location holding it, with single-range
 * requests (206 + Content-Range; 416 when unsatisfiable). `DELETE` is refused as Quay refuses it:
 * blobs leave through GC once nothing references them.
 */
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { repositoryBlobLookup, type BlobRow } from '../../shared/db/blobs.ts';
import { NotFoundError } from '../../shared/storage/errors.ts';
import type { ByteRange } from '../../shared/storage/types.ts';
import { authorizeRepository } from '../auth/access.ts';
import { OciError } from '../errors.ts';
import type { V2Context } from './context.ts';
import { parseDigest, type RepositoryName } from './paths.ts';

/** Handles GET and HEAD of a blob. */
export async function getBlob(ctx: V2Context, request: FastifyRequest, reply: FastifyReply, name: RepositoryName, rawDigest: string): Promise<FastifyReply> {
  const digest = parseDigest(rawDigest);
  // The blob is looked up in the access check's statement: one round trip per request.
  const { attached: blob } = await authorizeRepository<BlobRow>(request, name.namespace, name.repository, 'pull', repositoryBlobLookup(digest, new Date(ctx.now())));
  if (!blob || blob.location_ids.length === 0) throw new OciError('BLOB_UNKNOWN', undefined, { digest });
  const range = parseRange(request.headers.range, blob.size);
  // Opened before any header is set, so a failure renders as an ordinary error response.
  const stream = request.method === 'HEAD' ? undefined : await openBlob(ctx, request, name, blob, range);
  reply.header('Docker-Content-Digest', digest)
    .header('ETag', `"${digest}"`)
    .header('Accept-Ranges', 'bytes')
    .header('Cache-Control', 'max-age=31536000')
    .header('Content-Type', 'application/octet-stream')
    .header('Content-Length', String(range ? range.end - range.start + 1 : blob.size));
  if (range) reply.status(206).header('Content-Range', `bytes ${range.start}-${range.end}/${blob.size}`);
  return reply.send(stream);
}

async function openBlob(ctx: V2Context, request: FastifyRequest, name: RepositoryName, blob: BlobRow, range: ByteRange | undefined): Promise<Readable> {
  const locations = await ctx.locations();
  const placements = blob.location_ids.map((id) => locations.nameOf(id)).filter((n): n is string => n !== undefined);
  try {
    return (await ctx.deps.storage.openBlob(blob.digest, placements, range)).stream;
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    // Rows say the bytes exist but no placement has them: report it loudly, answer as unknown.
    request.log.error({ err: error, digest: blob.digest, repository: name.full }, 'blob has placements but no object');
    throw new OciError('BLOB_UNKNOWN', undefined, { digest: blob.digest });
  }
}

/** Handles DELETE of a blob: 405 UNSUPPORTED, as Quay. */
export async function deleteBlob(_ctx: V2Context, request: FastifyRequest, _reply: FastifyReply, name: RepositoryName, rawDigest: string): Promise<never> {
  parseDigest(rawDigest);
  await authorizeRepository(request, name.namespace, name.repository, 'delete');
  throw new OciError('UNSUPPORTED', 'blobs cannot be deleted; unreferenced blobs are garbage collected', null, { status: 405 });
}

/**
 * The byte range a `Range` header asks of a `size`-byte blob: undefined for no header, a header
 * that is not one `bytes=` range (served whole, as RFC 9110 allows), and 416 when unsatisfiable.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    start = Math.max(0, size - suffix);
    end = size - 1;
    if (suffix === 0) start = size; // `bytes=-0` asks for nothing
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
    if (match[2] !== '' && Number(match[2]) < start) return undefined; // invalid range: ignore it
  }
  if (start >= size || end < start) {
    throw new OciError('RANGE_INVALID', undefined, { range: header, size }, { status: 416, headers: { 'Content-Range': `bytes */${size}` } });
  }
  return { start, end };
}
