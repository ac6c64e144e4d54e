/**
 * Refuses, once at the edge and before any route runs, text that Postgres cannot store: a NUL
 * character, or percent-encoding that does not decode to valid UTF-8 (Postgres refuses the first;
 * the second would reach the database as U+FFFD or make the router throw). Every path segment and
 * every query key and value is checked; so are the strings and keys of Quay API JSON bodies.
 * The answer is 400 with the error code of the route: Quay's API error on /api/v1, and on /v2 the
 * OCI code of the part that is wrong (NAME_INVALID for a repository name, TAG_INVALID or
 * DIGEST_INVALID for a reference, PAGINATION_NUMBER_INVALID for `n`, ...).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from './error-handler.ts';
import { apiErrors, OciError, type ApiError, type OciErrorCode } from './errors.ts';

const MESSAGE = 'text must not contain NUL characters or invalid UTF-8';
const DIGEST_LIKE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:/;

/** The OCI code of a bad query parameter, by name; other names answer UNSUPPORTED. */
const QUERY_CODES: Record<string, OciErrorCode> = {
  n: 'PAGINATION_NUMBER_INVALID', digest: 'DIGEST_INVALID', mount: 'DIGEST_INVALID', from: 'NAME_INVALID', scope: 'NAME_INVALID',
};

/** Installs the check on every route of `app` (and on requests no route matches). */
export function installInputGuard(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    const refusal = refusalForUrl(request.url);
    if (refusal) throw refusal;
  });
}

/**
 * Fastify's `frameworkErrors`: a path the router cannot decode (FST_ERR_BAD_URL) gets the same
 * answer as the hook gives, instead of Fastify's own error shape.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  // The app's error handler is not installed at this stage of routing: render here.
  const refusal = refusalForUrl(request.url);
  void (refusal ? sendError(reply, refusal) : reply.send(error));
}

/** The 400 for a request target carrying text Postgres cannot store, or undefined when it is clean. */
export function refusalForUrl(url: string): OciError | ApiError | undefined {
  // The common request (a pull) has no escapes at all: one scan and done.
  if (!url.includes('%') && !url.includes('\u0000')) return undefined;
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  const query = queryAt === -1 ? '' : url.slice(queryAt + 1);
  const segments = path.split('/');
  const badSegment = segments.findIndex((segment) => !isCleanComponent(segment));
  const badParameter = query === '' ? undefined : query.split('&').map((pair) => pair.split('=')).find((parts) => !parts.every(isCleanComponent));
  if (badSegment === -1 && badParameter === undefined) return undefined;
  if (path.startsWith('/api/')) return apiErrors.badRequest(`Invalid request: ${MESSAGE}`);
  const detail = { path: badSegment === -1 ? null : segments[badSegment], parameter: badParameter?.[0] ?? null };
  const code = badSegment !== -1 ? segmentCode(segments, badSegment) : parameterCode(path, decodeLoosely(badParameter![0]!));
  return new OciError(code, `invalid request: ${MESSAGE}`, detail, { status: 400 });
}

/** Throws Quay's 400 when a parsed JSON body holds a NUL character in any string or key. */
export function refuseNulInJson(value: unknown): void {
  if (containsNul(value)) throw apiErrors.badRequest(`Invalid request body: ${MESSAGE}`);
}

// Iterative: a body nested thousands of levels deep (JSON.parse takes it) must not overflow the
// stack, which would answer 500 (found by the reliability fuzz).
function containsNul(root: unknown): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return true;
    } else if (Array.isArray(value)) {
      for (const item of value) pending.push(item);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, v] of Object.entries(value)) {
        if (key.includes('\u0000')) return true;
        pending.push(v);
      }
    }
  }
  return false;
}

// decodeURIComponent throws on malformed escapes and on bytes that are not UTF-8 (overlong forms
// and surrogates included); a query component also spells spaces as '+'.
function isCleanComponent(raw: string): boolean {
  if (!raw.includes('%') && !raw.includes('\u0000')) return true;
  try {
    return !decodeURIComponent(raw.replaceAll('+', ' ')).includes('\u0000');
  } catch {
    return false;
  }
}

function decodeLoosely(raw: string): string {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    return raw;
  }
}

// Segments are read from the right, as registry/v2/paths.ts does: `.../manifests/<reference>`,
// `.../blobs/<digest>`, `.../referrers/<digest>`, `.../blobs/uploads/<uuid>`; anything else
// belongs to the repository name.
function segmentCode(segments: readonly string[], index: number): OciErrorCode {
  const last = index === segments.length - 1;
  const before = segments[index - 1];
  if (last && before === 'manifests') return DIGEST_LIKE.test(segments[index]!) ? 'DIGEST_INVALID' : 'TAG_INVALID';
  if (last && (before === 'blobs' || before === 'referrers')) return 'DIGEST_INVALID';
  if (last && before === 'uploads' && segments[index - 2] === 'blobs') return 'BLOB_UPLOAD_INVALID';
  return 'NAME_INVALID';
}

function parameterCode(path: string, name: string): OciErrorCode {
  if (name === 'last') return path === '/v2/_catalog' ? 'NAME_INVALID' : 'TAG_INVALID';
  return QUERY_CODES[name] ?? 'UNSUPPORTED';
}
