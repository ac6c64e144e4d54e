/**
 * The /v2 listings: `tags/list` and `_catalog` (both paginated with `n` and `last`, the next page
 * announced in a `Link: <...>; rel="next"` header), and the referrers API
 * (`referrers/<digest>?artifactType=`: an OCI image index of the manifests whose subject is that
 * digest, with `OCI-Filters-Applied: artifactType` when filtered).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { listReferrers } from '../../shared/db/manifests.ts';
import { listTagNames } from '../../shared/db/tags.ts';
import { authorizeRepository, principalOf, visibleRepositoriesFilter } from '../auth/access.ts';
import { OciError } from '../errors.ts';
import { OCI_IMAGE_INDEX } from '../manifests/media-types.ts';
import type { V2Context } from './context.ts';
import { parseDigest, repositoryPath, type RepositoryName } from './paths.ts';
import { queryParam } from './query.ts';

/** Largest page a listing returns, whatever `n` asks. */
export const MAX_PAGE = 1000;
/** Most referrers one response lists. */
const MAX_REFERRERS = 1000;

/** Beyond this distribution's strconv.Atoi fails, so it answers PAGINATION_NUMBER_INVALID. */
const INT64_MAX = 2n ** 63n - 1n;

/**
 * `n` and `last` of a listing request. `n` is read as distribution reads it: absent or empty means
 * a full page, a decimal integer of at least 0 is the page size (0: an empty page; more than
 * MAX_PAGE: MAX_PAGE, with a Link to the rest, as the OCI specification allows), anything else
 * (negative, not a number, beyond 64 bits) is 400 PAGINATION_NUMBER_INVALID.
 */
export function pageParams(request: FastifyRequest): { limit: number; last: string | undefined } {
  const n = queryParam(request, 'n') ?? (request.query as Record<string, unknown> | undefined)?.n;
  if (n === undefined || n === '') return { limit: MAX_PAGE, last: queryParam(request, 'last') };
  if (typeof n !== 'string' || !/^\+?\d+$/.test(n) || BigInt(n) > INT64_MAX) {
    throw new OciError('PAGINATION_NUMBER_INVALID', undefined, { n: typeof n === 'string' ? n : null });
  }
  return { limit: Math.min(Number(n), MAX_PAGE), last: queryParam(request, 'last') };
}

function linkNext(reply: FastifyReply, path: string, limit: number, last: string): void {
  reply.header('Link', `<${path}?n=${limit}&last=${encodeURIComponent(last)}>; rel="next"`);
}

/** Handles GET tags/list. */
export async function listTags(ctx: V2Context, request: FastifyRequest, reply: FastifyReply, name: RepositoryName): Promise<unknown> {
  const { repository } = await authorizeRepository(request, name.namespace, name.repository, 'pull');
  const { limit, last } = pageParams(request);
  const names = limit === 0 ? [] : await listTagNames(ctx.deps.db, { repositoryId: repository.id, nowMs: ctx.now(), last, limit: limit + 1 });
  const page = names.slice(0, limit);
  if (names.length > limit) linkNext(reply, `${repositoryPath(name)}/tags/list`, limit, page[page.length - 1]!);
  return { name: name.full, tags: page };
}

/** Handles GET _catalog: only repositories the caller may see. */
export async function listCatalog(ctx: V2Context, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const principal = await principalOf(request);
  const { limit, last } = pageParams(request);
  const filter = visibleRepositoriesFilter(request, principal, 3);
  const { rows } = limit === 0 ? { rows: [] } : await ctx.deps.db.query<{ full: string }>(
    `SELECT n.username || '/' || r.name AS full FROM repository r JOIN namespace n ON n.id = r.namespace_user_id
     WHERE ($1::text IS NULL OR n.username || '/' || r.name > $1) AND ${filter.sql}
     ORDER BY n.username || '/' || r.name LIMIT $2`,
    [last ?? null, limit + 1, ...filter.params]);
  const page = rows.slice(0, limit).map((row) => row.full);
  if (rows.length > limit) linkNext(reply, '/v2/_catalog', limit, page[page.length - 1]!);
  return { repositories: page };
}

/** Handles GET referrers/<digest>. */
export async function listReferrersOf(ctx: V2Context, request: FastifyRequest, reply: FastifyReply, name: RepositoryName, rawDigest: string): Promise<FastifyReply> {
  const subject = parseDigest(rawDigest);
  const { repository } = await authorizeRepository(request, name.namespace, name.repository, 'pull');
  const artifactType = queryParam(request, 'artifactType');
  const rows = await listReferrers(ctx.deps.db, { repositoryId: repository.id, subject, artifactType, nowMs: ctx.now(), limit: MAX_REFERRERS });
  const manifests = rows.map((row) => ({
    mediaType: row.media_type, digest: row.digest, size: row.size,
    ...(row.artifact_type ? { artifactType: row.artifact_type } : {}),
    ...annotationsOf(row.manifest_bytes),
  }));
  if (artifactType !== undefined) reply.header('OCI-Filters-Applied', 'artifactType');
  return reply.status(200).header('Content-Type', OCI_IMAGE_INDEX).send(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_IMAGE_INDEX, manifests })));
}

// The referrers API copies each manifest's annotations into its descriptor.
function annotationsOf(bytes: Buffer): { annotations?: Record<string, string> } {
  const annotations = (JSON.parse(bytes.toString('utf8')) as { annotations?: Record<string, string> }).annotations;
  return annotations && Object.keys(annotations).length > 0 ? { annotations } : {};
}
