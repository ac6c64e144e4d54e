/**
 * `DELETE /v2/<name>/manifests/<tag|digest>`: by tag, ends the tag; by digest, ends every alive
 * tag on the manifest (hidden ones too, as Quay's delete_tags_for_manifest), so pulls by that
 * digest answer MANIFEST_UNKNOWN at once while the row stays for the time machine. Data is left
 * to GC: the outbox schedules the repository's `garbagecollection` job for when the ended tags
 * leave the time machine. Logs `delete_tag` per visible tag, in the same transaction. Answers 202;
 * 404 MANIFEST_UNKNOWN for a manifest that is not reachable, or that no tag of its own points at
 * (a child reachable only through its index, as Quay), and for a reference that is neither a tag
 * nor a digest. With RESET_CHILD_MANIFEST_EXPIRATION the children of a deleted index lose their
 * `$temp-` keep-alive at the same moment, so they are collected with it.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { logAction, type LogSettings } from '../../../shared/db/logs.ts';
import { headManifestByDigest, manifestDigestsByIds } from '../../../shared/db/manifests.ts';
import { withTransaction, type Queryable } from '../../../shared/db/pool.ts';
import { endManifestTags, endTag, resetChildManifestExpiration, TagImmutableError, type EndedTag } from '../../../shared/db/tags.ts';
import { actorLogMetadata, authorizeRepository, type RepositoryAccess } from '../../auth/access.ts';
import { OciError } from '../../errors.ts';
import type { V2Context } from '../context.ts';
import { lookupReference, type RepositoryName } from '../paths.ts';
import { scheduleCollectionOfEndedTags } from './collection.ts';

/** Handles DELETE of a manifest or tag. */
export async function deleteManifest(ctx: V2Context, request: FastifyRequest, reply: FastifyReply, name: RepositoryName, reference: string): Promise<FastifyReply> {
  const ref = lookupReference(reference);
  const access = await authorizeRepository(request, name.namespace, name.repository, 'delete');
  if (!ref) throw new OciError('MANIFEST_UNKNOWN', undefined, { reference });
  const { repository } = access;
  const nowMs = ctx.now();
  await withTransaction(ctx.deps.db, async (tx) => {
    let ended: EndedTag[];
    if ('tag' in ref) {
      ended = await endTag(tx, { repositoryId: repository.id, name: ref.tag, nowMs });
      if (ended.length === 0) throw new OciError('MANIFEST_UNKNOWN', undefined, { tag: ref.tag });
    } else {
      const manifest = await headManifestByDigest(tx, repository.id, ref.digest, nowMs);
      if (!manifest) throw new OciError('MANIFEST_UNKNOWN', undefined, { digest: ref.digest });
      ended = await endManifestTags(tx, { repositoryId: repository.id, manifestId: manifest.id, nowMs });
      if (ended.length === 0) throw new OciError('MANIFEST_UNKNOWN', 'manifest is only reachable through an index', { digest: ref.digest });
    }
    if (ctx.deps.config.quay.RESET_CHILD_MANIFEST_EXPIRATION) {
      const manifestIds = [...new Set(ended.flatMap((t) => (t.manifest_id === null ? [] : [t.manifest_id])))];
      await resetChildManifestExpiration(tx, { repositoryId: repository.id, manifestIds, endMs: nowMs });
    }
    await recordDeletion(tx, ctx.deps.config.quay, access, ended, request.ip, nowMs);
  }).catch((error: unknown) => {
    if (error instanceof TagImmutableError) throw new OciError('DENIED', error.message, { tag: error.tag });
    throw error;
  });
  ctx.deps.onOutboxWrite?.();
  return reply.status(202).header('Content-Length', '0').send();
}

async function recordDeletion(tx: Queryable, logs: LogSettings, access: RepositoryAccess, ended: readonly EndedTag[], ip: string, nowMs: number): Promise<void> {
  const { repository, principal } = access;
  if (ended.length === 0) return;
  const digests = await manifestDigestsByIds(tx, [...new Set(ended.map((t) => t.manifest_id).filter((id): id is number => id !== null))]);
  for (const tag of ended.filter((t) => !t.hidden)) {
    await logAction(tx, logs, {
      kind: 'delete_tag', namespace: { id: repository.namespace_user_id, name: repository.namespace }, performerId: principal.id ?? null, repositoryId: repository.id, ip,
      metadata: {
        tag: tag.name, repo: repository.name, namespace: repository.namespace, digest: digests.get(tag.manifest_id ?? -1) ?? null, ...actorLogMetadata(principal),
      },
      datetime: new Date(nowMs),
    });
  }
  await scheduleCollectionOfEndedTags(tx, repository, ended.map((t) => t.lifetime_end_ms));
}
