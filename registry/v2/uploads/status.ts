/**
 * `GET /v2/<name>/blobs/uploads/<uuid>` (204 with the session's Range, so a client can resume) and
 * `DELETE` (cancel: the session row goes first, with a `chunk_cleanup` job for its objects in the
 * same transaction; they are deleted at once, best effort, and the job removes whatever a failure
 * leaves 30 s later).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { withTransaction } from '../../../shared/db/pool.ts';
import { deleteUpload } from '../../../shared/db/uploads.ts';
import { uploadKey } from '../../../shared/storage/keys.ts';
import { authorizeRepository } from '../../auth/access.ts';
import { OciError } from '../../errors.ts';
import type { V2Context } from '../context.ts';
import type { RepositoryName } from '../paths.ts';
import { sessionStore } from './append.ts';
import { queueSegments } from './commit.ts';
import { loadUpload, parseUploadUuid, setUploadHeaders } from './session.ts';
import { discardUploadObjects } from './writer.ts';

/** Handles GET on an upload session. */
export async function uploadStatus(ctx: V2Context, request: FastifyRequest, reply: FastifyReply, name: RepositoryName, rawUuid: string): Promise<FastifyReply> {
  const { repository } = await authorizeRepository(request, name.namespace, name.repository, 'push');
  const row = await loadUpload(ctx, repository.id, parseUploadUuid(rawUuid));
  return setUploadHeaders(reply.status(204), name, row.uuid, row.byte_count).send();
}

/** Handles DELETE on an upload session. */
export async function cancelUpload(ctx: V2Context, request: FastifyRequest, reply: FastifyReply, name: RepositoryName, rawUuid: string): Promise<FastifyReply> {
  const { repository } = await authorizeRepository(request, name.namespace, name.repository, 'push');
  const row = await loadUpload(ctx, repository.id, parseUploadUuid(rawUuid));
  const { store, location } = await sessionStore(ctx, row);
  const deleted = await withTransaction(ctx.deps.db, async (tx) => {
    if (!(await deleteUpload(tx, row.uuid))) return false;
    await queueSegments(tx, location, row.uuid, [uploadKey(row.uuid), ...(row.storage.tail ? [row.storage.tail.key] : [])]);
    return true;
  });
  if (!deleted) throw new OciError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: row.uuid });
  ctx.deps.onOutboxWrite?.();
  ctx.hashes.drop(row.uuid);
  await discardUploadObjects(store, row.uuid, row.storage).catch((error: unknown) => request.log.warn({ err: error, uuid: row.uuid }, 'upload objects left for the sweep'));
  return reply.status(204).header('Content-Length', '0').send();
}
