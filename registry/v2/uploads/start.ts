/**
 * `POST /v2/<name>/blobs/uploads/`: starts a session (202 with its Location), or takes the whole
 * blob at once (`?digest=` with a body: 201), or mounts a blob from another repository
 * (`?mount=<digest>&from=<ns/repo>`: 201 when the caller may pull `from` and the blob is linked
 * there; otherwise a new session, as the spec asks).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { findRepositoryBlob, getBlob } from '../../../shared/db/blobs.ts';
import { lockBlobDigest } from '../../../shared/db/locks.ts';
import { withTransaction } from '../../../shared/db/pool.ts';
import { QUOTA_EXCEEDED_MESSAGE, uploadExceedsQuota } from '../../../shared/db/quota/enforcement.ts';
import type { RepositoryRow } from '../../../shared/db/repositories.ts';
import { createUpload } from '../../../shared/db/uploads.ts';
import { authorizeRepository } from '../../auth/access.ts';
import { splitRepositoryName } from '../../auth/scope.ts';
import { OciError } from '../../errors.ts';
import type { V2Context } from '../context.ts';
import { parseDigest, type RepositoryName } from '../paths.ts';
import { declaredBody } from './append.ts';
import { leaseInTransaction } from './commit.ts';
import { queryParam } from '../query.ts';
import { blobCreated, completeSession } from './complete.ts';
import { setUploadHeaders } from './session.ts';

/** Handles POST on a repository's uploads. */
export async function startUpload(ctx: V2Context, request: FastifyRequest, reply: FastifyReply, name: RepositoryName): Promise<FastifyReply> {
  const { repository } = await authorizeRepository(request, name.namespace, name.repository, 'push');
  if (await uploadExceedsQuota(ctx.deps.db, ctx.deps.config, repository, { stage: 'start' })) throw new OciError('DENIED', QUOTA_EXCEEDED_MESSAGE, {});
  const mount = queryParam(request, 'mount');
  if (mount !== undefined) {
    const digest = parseDigest(mount);
    if (await mountBlob(ctx, request, repository, digest, queryParam(request, 'from'))) return blobCreated(reply, name, digest);
  }
  const digestParam = queryParam(request, 'digest');
  const digest = digestParam === undefined ? undefined : parseDigest(digestParam);
  const declared = digest === undefined ? {} : declaredBody(request);
  const location = ctx.deps.storage.preferredLocation;
  const row = await createUpload(ctx.deps.db, {
    repositoryId: repository.id, uuid: randomUUID(), locationId: (await ctx.locations()).idOf(location), at: new Date(ctx.now()),
  });
  if (digest === undefined) return setUploadHeaders(reply.status(202), name, row.uuid, 0).send();
  // Monolithic: the session lives for this request only, so a crash leaves a row the sweep finds.
  await completeSession(ctx, request, { name, repository, uuid: row.uuid, digest, declared: { length: declared.length } });
  return blobCreated(reply, name, digest);
}

/**
 * Gives `target` a lease on blob `digest` when the caller may pull `from` and the blob is linked
 * there with bytes somewhere; false (fall back to an upload) otherwise.
 */
async function mountBlob(ctx: V2Context, request: FastifyRequest, target: RepositoryRow, digest: string, from: string | undefined): Promise<boolean> {
  if (from === undefined) return false;
  let source: RepositoryRow;
  try {
    const { namespace, repository } = splitRepositoryName(from, ctx.deps.config.quay.SERVER_HOSTNAME);
    source = (await authorizeRepository(request, namespace, repository, 'pull')).repository;
  } catch (error) {
    if (error instanceof OciError) return false; // no such repository, or not the caller's to read
    throw error;
  }
  const blob = await findRepositoryBlob(ctx.deps.db, source.id, digest, new Date(ctx.now()));
  if (!blob || blob.location_ids.length === 0) return false;
  const mounted = await withTransaction(ctx.deps.db, async (tx) => {
    // Under the digest lock, so GC cannot delete the blob between the check and the lease.
    await lockBlobDigest(tx, digest);
    if (!(await getBlob(tx, digest))?.location_ids.length) return false;
    await leaseInTransaction(ctx, tx, target, blob.id);
    return true;
  });
  if (mounted) ctx.deps.onOutboxWrite?.();
  return mounted;
}
