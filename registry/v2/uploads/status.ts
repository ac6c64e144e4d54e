/**
 * `GET /v2/<name>/blobs/uploads/<uuid>` (204 with the session's Range, so a client can resume) and
 * `DELETE` (cancel: the session row goes first, then its objects, best effort; the upload sweep
 * removes whatever a failure leaves).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { deleteUpload } from '../../../shared/db/uploads.ts';
import { authorizeRepository } from '../../auth/access.ts';
import { OciError } from '../../errors.ts';
import type { V2Context } from '../context.ts';
import type { RepositoryName } from '../paths.ts';
import { sessionStore } from './append.ts';
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
  if (!(await deleteUpload(ctx.deps.db, row.uuid))) throw new OciError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: row.uuid });
  ctx.hashes.drop(row.uuid);
  const { store } = await sessionStore(ctx, row);
  await discardUploadObjects(store, row.uuid, row.storage).catch((error: unknown) => request.log.warn({ err: error, uuid: row.uuid }, 'upload objects left for the sweep'));
  return reply.status(204).header('Content-Length', '0').send();
}
