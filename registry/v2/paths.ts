/**
 * Parses /v2 paths. Repository names are `<namespace>/<repo...>` and the repo part may contain
 * slashes (Quay allows nested names), so the router hands every /v2 path to one wildcard route
 * and this parser reads the endpoint from the right: `.../manifests/<reference>`,
 * `.../blobs/uploads/[<uuid>]`, `.../blobs/<digest>`, `.../tags/list`, `.../referrers/<digest>`.
 */
import { splitRepositoryName } from '../auth/scope.ts';
import { OciError } from '../errors.ts';

/** A repository as a /v2 path names it. */
export interface RepositoryName {
  readonly namespace: string;
  readonly repository: string;
  /** `namespace/repository`. */
  readonly full: string;
}

/** The endpoint a /v2 path addresses. */
export type V2Endpoint =
  | { readonly kind: 'manifest'; readonly name: RepositoryName; readonly reference: string }
  | { readonly kind: 'blob'; readonly name: RepositoryName; readonly digest: string }
  | { readonly kind: 'uploads'; readonly name: RepositoryName }
  | { readonly kind: 'upload'; readonly name: RepositoryName; readonly uuid: string }
  | { readonly kind: 'tags'; readonly name: RepositoryName }
  | { readonly kind: 'referrers'; readonly name: RepositoryName; readonly digest: string };

// Tried in order: the uploads forms must win over `blobs/<digest>`.
const ENDPOINTS: { pattern: RegExp; build: (name: RepositoryName, arg: string) => V2Endpoint }[] = [
  { pattern: /^(.+)\/blobs\/uploads\/?$/, build: (name) => ({ kind: 'uploads', name }) },
  { pattern: /^(.+)\/blobs\/uploads\/([^/]+)$/, build: (name, uuid) => ({ kind: 'upload', name, uuid }) },
  { pattern: /^(.+)\/blobs\/([^/]+)$/, build: (name, digest) => ({ kind: 'blob', name, digest }) },
  { pattern: /^(.+)\/manifests\/([^/]+)$/, build: (name, reference) => ({ kind: 'manifest', name, reference }) },
  { pattern: /^(.+)\/tags\/list\/?$/, build: (name) => ({ kind: 'tags', name }) },
  { pattern: /^(.+)\/referrers\/([^/]+)$/, build: (name, digest) => ({ kind: 'referrers', name, digest }) },
];

/**
 * The endpoint of `path` (the part after `/v2/`, already percent-decoded), or undefined when it
 * addresses none. NAME_INVALID when it does but the repository name is not valid.
 */
export function parseV2Path(path: string): V2Endpoint | undefined {
  for (const { pattern, build } of ENDPOINTS) {
    const match = pattern.exec(path);
    if (!match) continue;
    const { namespace, repository } = splitRepositoryName(match[1]!, '');
    return build({ namespace, repository, full: `${namespace}/${repository}` }, match[2] ?? '');
  }
  return undefined;
}

const SHA256 = /^sha256:[a-f0-9]{64}$/;
const DIGEST_LIKE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** `value` as a digest the registry stores (sha256); DIGEST_INVALID otherwise. */
export function parseDigest(value: string | undefined): string {
  if (value === undefined || !SHA256.test(value)) {
    throw new OciError('DIGEST_INVALID', 'invalid digest: only sha256:<64 lowercase hex> is supported', { digest: value ?? null });
  }
  return value;
}

/** A manifest reference: a digest (DIGEST_INVALID when malformed) or a tag (TAG_INVALID when malformed). */
export function parseReference(reference: string): { digest: string } | { tag: string } {
  if (DIGEST_LIKE.test(reference)) return { digest: parseDigest(reference) };
  if (!TAG.test(reference)) throw new OciError('TAG_INVALID', 'invalid tag', { tag: reference });
  return { tag: reference };
}

/**
 * A manifest reference as GET, HEAD and DELETE read it: a tag or a sha256 digest, or undefined for
 * anything else (it names no manifest, so those answer 404 MANIFEST_UNKNOWN; PUT uses parseReference).
 */
export function lookupReference(reference: string): { digest: string } | { tag: string } | undefined {
  if (SHA256.test(reference)) return { digest: reference };
  return TAG.test(reference) ? { tag: reference } : undefined;
}

/** The path prefix of a repository's endpoints: `/v2/<namespace>/<repository>`. */
export function repositoryPath(name: RepositoryName): string {
  return `/v2/${name.full}`;
}
