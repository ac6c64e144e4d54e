/**
 * `GET`/`HEAD /v2/<name>/manifests/<tag|digest>`: the stored bytes, byte-exact, with their media
 * type. One statement: the access check with the manifest lookup attached (tag -> manifest join,
 * or (repository, digest) while the manifest is reachable), handed out only once access is
 * granted. A reference that is neither a tag nor a digest names no manifest: 404
 * MANIFEST_UNKNOWN, as the OCI specification and distribution answer. Counts Quay's pull metrics
 * on GET.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { manifestByDigestLookup, type ManifestHeadRow, type ManifestRow } from '../../../shared/db/manifests.ts';
import { taggedManifestLookup } from '../../../shared/db/tags.ts';
import type { ActionLog } from '../../../shared/db/logs.ts';
import type { RepositoryRow } from '../../../shared/db/repositories.ts';
import { actorLogMetadata, authorizeRepository, type Principal } from '../../auth/access.ts';
import { OciError } from '../../errors.ts';
import { imagePulledBytes, imagePulls } from '../../metrics.ts';
import type { V2Context } from '../context.ts';
import { lookupReference, type RepositoryName } from '../paths.ts';

/** Handles GET and HEAD of a manifest. */
export async function getManifest(ctx: V2Context, request: FastifyRequest, reply: FastifyReply, name: RepositoryName, reference: string): Promise<FastifyReply> {
  const head = request.method === 'HEAD';
  const ref = lookupReference(reference);
  const refLabel = ref && 'tag' in ref ? 'tag' : 'manifest';
  try {
    if (!ref) {
      await authorizeRepository(request, name.namespace, name.repository, 'pull');
      throw new OciError('MANIFEST_UNKNOWN', undefined, { reference });
    }
    const nowMs = ctx.now();
    // The manifest is looked up in the access check's statement: one round trip per request.
    const lookup = 'tag' in ref ? taggedManifestLookup(ref.tag, nowMs, head) : manifestByDigestLookup(ref.digest, nowMs, head);
    if (head) {
      const { attached: row } = await authorizeRepository<ManifestHeadRow>(request, name.namespace, name.repository, 'pull', lookup);
      if (!row) throw new OciError('MANIFEST_UNKNOWN', undefined, ref);
      return manifestHeaders(reply, row.digest, row.media_type, row.size).send();
    }
    const { repository, principal, attached: row } = await authorizeRepository<ManifestRow>(request, name.namespace, name.repository, 'pull', lookup);
    if (!row) throw new OciError('MANIFEST_UNKNOWN', undefined, ref);
    imagePulls.inc({ protocol: 'v2', ref: refLabel, status: 200 });
    ctx.pullLogs.add(pullLog(request, repository, principal, ref, nowMs));
    imagePulledBytes.inc({ protocol: 'v2' }, row.layers_compressed_size ?? 0);
    return manifestHeaders(reply, row.digest, row.media_type, row.manifest_bytes.length).send(row.manifest_bytes);
  } catch (error) {
    if (!head && error instanceof OciError) imagePulls.inc({ protocol: 'v2', ref: refLabel, status: error.status });
    throw error;
  }
}

/** Quay's `track_and_log('pull_repo', ...)` entry: repo, namespace, user-agent, the reference, who pulled. */
function pullLog(request: FastifyRequest, repository: RepositoryRow, principal: Principal, ref: NonNullable<ReturnType<typeof lookupReference>>, nowMs: number): ActionLog {
  return {
    kind: 'pull_repo', namespace: { id: repository.namespace_user_id, name: repository.namespace }, repositoryId: repository.id,
    performerId: principal.id ?? null, ip: request.ip, datetime: new Date(nowMs),
    metadata: {
      repo: repository.name, namespace: repository.namespace, 'user-agent': request.headers['user-agent'] ?? null,
      ...('tag' in ref ? { tag: ref.tag } : { manifest_digest: ref.digest }),
      ...actorLogMetadata(principal),
    },
  };
}

function manifestHeaders(reply: FastifyReply, digest: string, mediaType: string, size: number): FastifyReply {
  return reply.status(200)
    .header('Content-Type', mediaType)
    .header('Content-Length', String(size))
    .header('Docker-Content-Digest', digest)
    .header('ETag', `"${digest}"`);
}
