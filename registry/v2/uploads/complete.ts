/**
 * Completing an upload: `PUT /v2/<name>/blobs/uploads/<uuid>?digest=` (optionally with a last
 * chunk), and the monolithic `POST ...?digest=` with the whole blob as body. The bytes are
 * assembled into one object, verified against the digest (with the running hash, or by streaming
 * the object once when this process does not hold the hash; see hashes.ts), then committed.
 * Any failure after the last byte arrived ends the session: nothing of it is recorded, and the
 * client starts again (DIGEST_INVALID, SIZE_INVALID, or the storage error).
 */
import { createHash, type Hash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RepositoryRow } from '../../../shared/db/repositories.ts';
import { QUOTA_EXCEEDED_MESSAGE, uploadExceedsQuota } from '../../../shared/db/quota/enforcement.ts';
import { deleteUpload } from '../../../shared/db/uploads.ts';
import { NotFoundError } from '../../../shared/storage/errors.ts';
import type { ObjectStore } from '../../../shared/storage/types.ts';
import { authorizeRepository } from '../../auth/access.ts';
import { OciError } from '../../errors.ts';
import type { V2Context } from '../context.ts';
import { parseDigest, repositoryPath, type RepositoryName } from '../paths.ts';
import { queryParam } from '../query.ts';
import { appendBody, declaredBody, type DeclaredBody } from './append.ts';
import { commitBlob } from './commit.ts';
import { parseUploadUuid, withUploadClaim } from './session.ts';

/** Handles PUT on an upload session. */
export async function completeUpload(ctx: V2Context, request: FastifyRequest, reply: FastifyReply, name: RepositoryName, rawUuid: string): Promise<FastifyReply> {
  const { repository } = await authorizeRepository(request, name.namespace, name.repository, 'push');
  const uuid = parseUploadUuid(rawUuid);
  if (await uploadExceedsQuota(ctx.deps.db, ctx.deps.config, repository, { stage: 'complete', uuid })) throw new OciError('DENIED', QUOTA_EXCEEDED_MESSAGE, {});
  const digest = parseDigest(queryParam(request, 'digest'));
  await completeSession(ctx, request, { name, repository, uuid, digest, declared: declaredBody(request) });
  return blobCreated(reply, name, digest);
}

/** Appends the request's last bytes to session `uuid`, verifies them against `digest` and commits the blob. */
export async function completeSession(
  ctx: V2Context, request: FastifyRequest,
  input: { name: RepositoryName; repository: RepositoryRow; uuid: string; digest: string; declared: DeclaredBody },
): Promise<void> {
  const { name, repository, uuid, digest, declared } = input;
  await withUploadClaim(ctx, { name, repositoryId: repository.id, uuid, byteCount: declared.start }, async (row, claim) => {
    const { store, location, outcome, received, hash } = await appendBody(ctx, request, row, claim, declared, true);
    const objectKey = outcome.objectKey!;
    const leftovers = [objectKey, ...outcome.obsolete, ...(row.storage.tail ? [row.storage.tail.key] : [])];
    try {
      await verifyDigest(store, objectKey, digest, hash);
      await commitBlob(ctx, { repository, digest, size: row.byte_count + received, objectKey, location, uuid, segments: outcome.obsolete });
    } catch (error) {
      await deleteUpload(ctx.deps.db, uuid).catch(() => undefined);
      await store.deleteMany(leftovers).catch(() => undefined); // the multipart write, if any, is completed
      // The objects vanished under us: the session was cancelled meanwhile.
      if (error instanceof NotFoundError) throw new OciError('BLOB_UPLOAD_UNKNOWN', 'the upload was cancelled while it completed', { uuid });
      throw error;
    } finally {
      ctx.hashes.drop(uuid);
    }
    if (outcome.obsolete.length > 0) await store.deleteMany(outcome.obsolete).catch(() => undefined);
  });
}

/** 201 Created for blob `digest` of repository `name`. */
export function blobCreated(reply: FastifyReply, name: RepositoryName, digest: string): FastifyReply {
  return reply.status(201)
    .header('Location', `${repositoryPath(name)}/blobs/${digest}`)
    .header('Docker-Content-Digest', digest)
    .header('Content-Length', '0')
    .send();
}

async function verifyDigest(store: ObjectStore, objectKey: string, expected: string, hash: Hash | undefined): Promise<void> {
  const actual = hash ? `sha256:${hash.digest('hex')}` : await digestOfObject(store, objectKey);
  if (actual !== expected) throw new OciError('DIGEST_INVALID', undefined, { expected, actual });
}

// The fallback when this process does not hold the running hash: stream the object back once.
async function digestOfObject(store: ObjectStore, key: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of await store.get(key)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}
