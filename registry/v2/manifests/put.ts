/**
 * `PUT /v2/<name>/manifests/<tag|digest>`: validates the manifest (JSON, media type, schema,
 * artifact policy, digest in the URL) and stores it with everything it causes in one transaction
 * (store.ts). Answers 201 with the digest, and `OCI-Subject` for a manifest with a subject.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { withTransaction } from '../../../shared/db/pool.ts';
import { QuotaExceededError } from '../../../shared/db/quota/enforcement.ts';
import { TagImmutableError } from '../../../shared/db/tags.ts';
import { authorizeRepository } from '../../auth/access.ts';
import { OciError } from '../../errors.ts';
import { baseMediaType, parseManifest } from '../../manifests/parse.ts';
import { imagePushes } from '../../metrics.ts';
import type { V2Context } from '../context.ts';
import { parseReference, repositoryPath, type RepositoryName } from '../paths.ts';
import { storeManifest } from './store.ts';

/** Handles PUT of a manifest. */
export async function putManifest(ctx: V2Context, request: FastifyRequest, reply: FastifyReply, name: RepositoryName, reference: string): Promise<FastifyReply> {
  let mediaType = baseMediaType(request.headers['content-type']) ?? '';
  try {
    const ref = parseReference(reference);
    const { repository, principal } = await authorizeRepository(request, name.namespace, name.repository, 'push');
    const bytes = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const manifest = parseManifest(bytes, request.headers['content-type']);
    mediaType = manifest.mediaType;
    if ('digest' in ref && ref.digest !== manifest.digest) {
      throw new OciError('DIGEST_INVALID', 'manifest digest does not match the digest in the URL', { expected: ref.digest, actual: manifest.digest });
    }
    ctx.policy.check(manifest);
    const tag = 'tag' in ref ? ref.tag : undefined;
    await withTransaction(ctx.deps.db, (tx) => storeManifest(ctx, tx, {
      repository, principal, manifest, tag, ip: request.ip, userAgent: request.headers['user-agent'],
    })).catch(translateStoreError);
    ctx.deps.onOutboxWrite?.();
    imagePushes.inc({ protocol: 'v2', pstatus: 201, pmedia_type: mediaType });
    reply.status(201)
      .header('Location', `${repositoryPath(name)}/manifests/${manifest.digest}`)
      .header('Docker-Content-Digest', manifest.digest)
      .header('Content-Length', '0');
    if (manifest.subject) reply.header('OCI-Subject', manifest.subject.digest);
    return reply.send();
  } catch (error) {
    if (error instanceof OciError) imagePushes.inc({ protocol: 'v2', pstatus: error.status, pmedia_type: mediaType });
    throw error;
  }
}

// A blob deleted by GC between lookup and link fails the foreign key: the blob is unknown now.
function translateStoreError(error: unknown): never {
  if (error instanceof TagImmutableError) throw new OciError('DENIED', error.message, { tag: error.tag });
  if (error instanceof QuotaExceededError) throw new OciError('DENIED', error.message, {});
  if ((error as { code?: string }).code === '23503') throw new OciError('MANIFEST_BLOB_UNKNOWN', 'a referenced blob was removed during the push');
  throw error;
}
