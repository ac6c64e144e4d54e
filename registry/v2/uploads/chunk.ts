/**
 * `PATCH /v2/<name>/blobs/uploads/<uuid>`: appends a chunk. With Content-Range the chunk must start
 * where the session ends (else 416 with the session's Range); without it the body is a stream
 * appended at the end. Answers 202 with the new Range.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { QUOTA_EXCEEDED_MESSAGE, uploadExceedsQuota } from '../../../shared/db/quota/enforcement.ts';
import { saveUploadProgress } from '../../../shared/db/uploads.ts';
import { authorizeRepository } from '../../auth/access.ts';
import { OciError } from '../../errors.ts';
import type { V2Context } from '../context.ts';
import type { RepositoryName } from '../paths.ts';
import { appendBody, declaredBody } from './append.ts';
import { parseUploadUuid, setUploadHeaders, withUploadClaim } from './session.ts';

/** Handles PATCH on an upload session. */
export async function patchUpload(ctx: V2Context, request: FastifyRequest, reply: FastifyReply, name: RepositoryName, rawUuid: string): Promise<FastifyReply> {
  const { repository } = await authorizeRepository(request, name.namespace, name.repository, 'push');
  const uuid = parseUploadUuid(rawUuid);
  if (await uploadExceedsQuota(ctx.deps.db, ctx.deps.config, repository, { stage: 'chunk', uuid })) throw new OciError('DENIED', QUOTA_EXCEEDED_MESSAGE, {});
  const declared = declaredBody(request);
  const byteCount = await withUploadClaim(ctx, { name, repositoryId: repository.id, uuid, byteCount: declared.start }, async (row, claim) => {
    const { store, outcome, received, hash } = await appendBody(ctx, request, row, claim, declared, false);
    const total = row.byte_count + received;
    const saved = await saveUploadProgress(ctx.deps.db, {
      uuid, token: claim.token, byteCount: total, chunkCount: row.chunk_count + 1, storage: outcome.state, at: new Date(ctx.now()),
    });
    if (!saved) {
      await store.deleteMany(outcome.created).catch(() => undefined);
      throw new OciError('BLOB_UPLOAD_UNKNOWN', 'the upload was cancelled or taken over while the chunk was written', { uuid });
    }
    if (hash) ctx.hashes.put(uuid, hash, total);
    if (outcome.obsolete.length > 0) await store.deleteMany(outcome.obsolete).catch(() => undefined); // the upload sweep retries
    return total;
  });
  return setUploadHeaders(reply.status(202), name, uuid, byteCount).send();
}
