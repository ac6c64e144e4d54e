/**
 * Tags and the time machine: history listing, delete (the tag ends now and a `garbagecollection`
 * job is scheduled for when it leaves the namespace's window), restore within the window, and
 * Quay 3.9's permanent delete (`POST .../tag/{tag}/expire`, or `DELETE ...?skipRecoveryPeriod=true`
 * as later Quay releases spell it), both only when PERMANENTLY_DELETE_TAGS is on.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { logAction, type LogKind } from '../../shared/db/logs.ts';
import { findManifestIds } from '../../shared/db/manifests.ts';
import { getNamespaceById } from '../../shared/db/namespaces.ts';
import { withTransaction, type Queryable } from '../../shared/db/pool.ts';
import { RepositoryState, type RepositoryRow } from '../../shared/db/repositories.ts';
import { expireTagHistory, findRestorableManifest, listTagHistory, markReversion, scheduleTagCollection } from '../../shared/db/tag-history.ts';
import { endTag, resetChildManifestExpiration, setTag, TagImmutableError, type EndedTag } from '../../shared/db/tags.ts';
import type { Principal } from '../auth/access.ts';
import { nowMs } from '../auth/credentials.ts';
import { ApiError, apiErrors } from '../errors.ts';
import { clientIp, parseInput, repositoryParams, requireRepositoryRole, truthyBool } from './common.ts';
import { tagView } from './views.ts';

/** Quay's TAG_REGEX. */
const TAG_PATTERN = /^[\w][\w.-]{0,127}$/;
const tagParams = repositoryParams.extend({ tag: z.string().regex(TAG_PATTERN, 'Invalid tag name') });

const listQuery = z.object({
  specificTag: z.string().optional(),
  onlyActiveTags: truthyBool.optional(),
  limit: z.coerce.number().int().optional(),
  page: z.coerce.number().int().optional(),
});

const restoreBody = z.object({ manifest_digest: z.string({ error: 'Missing manifest_digest' }).min(1, 'Missing manifest_digest') });
const expireBody = z.object({
  manifest_digest: z.string().min(1).optional(),
  include_submanifests: z.boolean().optional(),
  is_alive: z.boolean().optional(),
});

/** Registers the tag routes. */
export async function registerTagRoutes(app: FastifyInstance): Promise<void> {
  app.get('/repository/:namespace/:repository/tag/', async (request) => {
    const { namespace, repository } = parseInput(repositoryParams, request.params);
    const query = parseInput(listQuery, request.query, 'query');
    const { repository: repo } = await requireRepositoryRole(request, namespace, repository, 'read');
    const page = Math.max(1, query.page ?? 1);
    const limit = Math.min(100, Math.max(1, query.limit ?? 50));
    const { rows, hasAdditional } = await listTagHistory(app.deps.db, {
      repositoryId: repo.id, nowMs: nowMs(app.deps), page, limit, specificTag: query.specificTag || undefined, onlyActive: query.onlyActiveTags ?? false,
    });
    return { tags: rows.map(tagView), page, has_additional: hasAdditional };
  });

  app.delete('/repository/:namespace/:repository/tag/:tag', async (request, reply) => {
    const target = await writableTag(request);
    const permanently = parseInput(z.object({ skipRecoveryPeriod: truthyBool.optional() }), request.query, 'query').skipRecoveryPeriod ?? false;
    if (permanently) requirePermanentDelete(app);
    await inTagTransaction(app, async (tx) => {
      const ended = await endTag(tx, { repositoryId: target.repo.id, name: target.tag, nowMs: target.nowMs });
      if (ended.length === 0) throw apiErrors.notFound();
      if (permanently) await expireEnded(tx, target, ended);
      if (app.deps.config.quay.RESET_CHILD_MANIFEST_EXPIRATION) {
        const endMs = permanently ? outsideWindowMs(target) : target.nowMs;
        await resetChildManifestExpiration(tx, { repositoryId: target.repo.id, manifestIds: manifestIdsOf(ended), endMs });
      }
      await log(tx, request, target, 'delete_tag', {});
      await scheduleTagCollection(tx, { ...collectionOf(target.repo), dueAtS: dueAt(target, ended, permanently) });
    });
    return reply.status(204).send();
  });

  app.post('/repository/:namespace/:repository/tag/:tag/restore', async (request) => {
    const target = await writableTag(request);
    const { manifest_digest: digest } = parseInput(restoreBody, request.body, 'restore');
    const manifestId = await findRestorableManifest(app.deps.db, { repositoryId: target.repo.id, digest, nowMs: target.nowMs, windowS: target.windowS });
    if (manifestId === undefined) throw apiErrors.notFound('Manifest not found within the time machine window');
    await inTagTransaction(app, async (tx) => {
      const { unchanged, ended } = await setTag(tx, { repositoryId: target.repo.id, name: target.tag, manifestId, nowMs: target.nowMs });
      if (!unchanged) await markReversion(tx, { repositoryId: target.repo.id, name: target.tag, nowMs: target.nowMs });
      await log(tx, request, target, 'revert_tag', { manifest_digest: digest });
      if (ended.length > 0) await scheduleTagCollection(tx, { ...collectionOf(target.repo), dueAtS: dueAt(target, ended, false) });
    });
    return {};
  });

  app.post('/repository/:namespace/:repository/tag/:tag/expire', async (request, reply) => {
    await expireTag(app, request);
    return reply.status(200).send('');
  });
}

/** Quay's TagTimeMachineDelete: moves the tag's matching rows out of the time machine and schedules GC now. */
async function expireTag(app: FastifyInstance, request: FastifyRequest): Promise<void> {
  requirePermanentDelete(app);
  const target = await writableTag(request, { anyState: true });
  const body = parseInput(expireBody, request.body, 'expire');
  if (!body.is_alive && !body.manifest_digest) throw apiErrors.badRequest('manifest_digest required when is_alive set to false');
  const digest = await inTagTransaction(app, async (tx) => {
    let manifestId: number | null;
    if (body.is_alive) {
      const ended = await endTag(tx, { repositoryId: target.repo.id, name: target.tag, nowMs: target.nowMs });
      manifestId = ended[0]?.manifest_id ?? null;
    } else {
      // Ended history rows point at manifests no alive tag keeps: any stored row of the repository counts.
      manifestId = (await findManifestIds(tx, target.repo.id, [body.manifest_digest!])).get(body.manifest_digest!) ?? null;
    }
    const moved = manifestId === null ? 0 : await expireTagHistory(tx, { repositoryId: target.repo.id, name: target.tag, manifestId, nowMs: target.nowMs, windowS: target.windowS });
    if (moved === 0) throw apiErrors.notFound();
    if (body.include_submanifests || app.deps.config.quay.RESET_CHILD_MANIFEST_EXPIRATION) {
      await resetChildManifestExpiration(tx, { repositoryId: target.repo.id, manifestIds: [manifestId!], endMs: outsideWindowMs(target) });
    }
    const { rows } = await tx.query<{ digest: string }>(`SELECT digest FROM manifest WHERE id = $1`, [manifestId]);
    await log(tx, request, target, 'permanently_delete_tag', { manifest_digest: rows[0]!.digest });
    await scheduleTagCollection(tx, { ...collectionOf(target.repo), dueAtS: Math.floor(target.nowMs / 1000) });
    return rows[0]!.digest;
  });
  request.log.info({ repository: `${target.repo.namespace}/${target.repo.name}`, tag: target.tag, digest }, 'tag permanently deleted');
}

interface TagTarget {
  principal: Principal;
  repo: RepositoryRow;
  tag: string;
  nowMs: number;
  /** The namespace's time machine window (removed_tag_expiration_s). */
  windowS: number;
}

/** Authorizes a tag change (write role; NORMAL repositories only unless `anyState`), with the time machine window. */
async function writableTag(request: FastifyRequest, options: { anyState?: boolean } = {}): Promise<TagTarget> {
  const { namespace, repository, tag } = parseInput(tagParams, request.params);
  const { principal, repository: repo } = await requireRepositoryRole(request, namespace, repository, 'write');
  if (!options.anyState && repo.state !== RepositoryState.NORMAL) {
    throw new ApiError(503, 'read_only', `Repository is in read only or mirror mode: ${repo.state}`);
  }
  const deps = request.server.deps;
  const owner = (await getNamespaceById(deps.db, repo.namespace_user_id))!;
  return { principal, repo, tag, nowMs: nowMs(deps), windowS: owner.removed_tag_expiration_s };
}

function requirePermanentDelete(app: FastifyInstance): void {
  // Quay hides the route (show_if) when the feature is off.
  if (!app.deps.config.quay.PERMANENTLY_DELETE_TAGS) throw apiErrors.notFound();
}

async function inTagTransaction<T>(app: FastifyInstance, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  try {
    const result = await withTransaction(app.deps.db, fn);
    app.deps.onOutboxWrite?.();
    return result;
  } catch (error) {
    if (error instanceof TagImmutableError) throw apiErrors.badRequest(`Cannot modify immutable tag ${error.tag}`);
    throw error;
  }
}

async function expireEnded(tx: Queryable, target: TagTarget, ended: EndedTag[]): Promise<void> {
  for (const row of ended) {
    if (row.manifest_id === null) continue;
    await expireTagHistory(tx, { repositoryId: target.repo.id, name: target.tag, manifestId: row.manifest_id, nowMs: target.nowMs, windowS: target.windowS });
  }
}

/** A moment already outside the namespace's time machine (what a permanent delete moves rows to). */
function outsideWindowMs(target: TagTarget): number {
  return target.nowMs - target.windowS * 1000 - 1;
}

function manifestIdsOf(ended: readonly EndedTag[]): number[] {
  return ended.flatMap((row) => (row.manifest_id === null ? [] : [row.manifest_id]));
}

/** The second the ended rows leave the time machine (now for a permanent delete). */
function dueAt(target: TagTarget, ended: EndedTag[], permanently: boolean): number {
  if (permanently) return Math.floor(target.nowMs / 1000);
  const lastEndMs = Math.max(...ended.map((row) => row.lifetime_end_ms));
  return Math.ceil((lastEndMs + target.windowS * 1000) / 1000);
}

function collectionOf(repo: RepositoryRow): { repositoryId: number; namespace: string; repository: string } {
  return { repositoryId: repo.id, namespace: repo.namespace, repository: repo.name };
}

async function log(tx: Queryable, request: FastifyRequest, target: TagTarget, kind: LogKind, extra: Record<string, unknown>): Promise<void> {
  await logAction(tx, request.server.deps.config.quay, {
    kind, namespace: { id: target.repo.namespace_user_id, name: target.repo.namespace }, performerId: target.principal.id ?? null, repositoryId: target.repo.id, ip: clientIp(request),
    metadata: { username: target.principal.username ?? null, repo: target.repo.name, namespace: target.repo.namespace, tag: target.tag, ...extra },
  });
}
