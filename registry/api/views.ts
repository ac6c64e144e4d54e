/** Quay's JSON views of registry objects, shared by several API routes. */
import { repositoryStateName, type RepositoryRow } from '../../shared/db/repositories.ts';
import { MANIFEST_LIST_MEDIA_TYPES, type TagHistoryRow } from '../../shared/db/tag-history.ts';

/** A date as Quay's format_date writes it (RFC 2822, `-0000` zone). */
export function formatDate(ms: number): string {
  return new Date(ms).toUTCString().replace('GMT', '-0000');
}

/** Quay's repository view fields shared by the list and the get. */
export function repositoryView(repo: RepositoryRow): Record<string, unknown> {
  return {
    namespace: repo.namespace, name: repo.name, description: repo.description, is_public: repo.visibility === 'public',
    kind: repo.kind, state: repositoryStateName(repo.state),
  };
}

/**
 * Quay's `_tag_dict`: `start_ts`/`end_ts` are Unix seconds, `last_modified` the start and
 * `expiration` the end as formatted dates; `end_ts`/`expiration` only for a tag with an end.
 */
export function tagView(tag: TagHistoryRow): Record<string, unknown> {
  const startS = Math.floor(tag.lifetime_start_ms / 1000);
  const endS = tag.lifetime_end_ms === null ? null : Math.floor(tag.lifetime_end_ms / 1000);
  return {
    name: tag.name,
    reversion: tag.reversion,
    ...(startS > 0 ? { start_ts: startS } : {}),
    ...(endS !== null && endS > 0 ? { end_ts: endS } : {}),
    manifest_digest: tag.manifest_digest,
    is_manifest_list: MANIFEST_LIST_MEDIA_TYPES.includes(tag.media_type ?? ''),
    size: tag.layers_compressed_size,
    ...(startS > 0 ? { last_modified: formatDate(startS * 1000) } : {}),
    ...(endS !== null ? { expiration: formatDate(endS * 1000) } : {}),
  };
}
