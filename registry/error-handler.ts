/**
 * Renders thrown errors: OciError in the distribution spec's shape, ApiError in Quay's API shape,
 * Fastify's own client errors (bad JSON, body too large) as 4xx with the right code, Postgres or
 * the storage backend failing (down, answering errors, disk full) as 503 (the client retries; the
 * process recovers by itself when the server is back), and anything else as a logged 500 (which
 * is a bug: every bad input must map to a 4xx).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isDatabaseUnavailable } from '../shared/db/unavailable.ts';
import { InvalidKeyError, InvalidRangeError, NotFoundError, StorageError, UnsupportedError } from '../shared/storage/errors.ts';
import { ApiError, OciError, OCI_ERRORS } from './errors.ts';

/** Seconds a client is asked to wait before retrying a request refused during a database or storage outage. */
const UNAVAILABLE_RETRY_AFTER_S = 5;

function isApiPath(request: FastifyRequest): boolean {
  return request.url.startsWith('/api/');
}

/**
 * True when `error` (or its cause) is the storage backend failing: a StorageError that is not one
 * of the typed answers routes handle themselves (missing object, bad key or range, unsupported).
 */
export function isStorageFailure(error: unknown, depth = 0): boolean {
  if (depth > 5 || typeof error !== 'object' || error === null) return false;
  if (error instanceof StorageError) {
    return !(error instanceof NotFoundError || error instanceof InvalidKeyError || error instanceof InvalidRangeError || error instanceof UnsupportedError);
  }
  return isStorageFailure((error as { cause?: unknown }).cause, depth + 1);
}

/** Answers 503 with Retry-After: distribution's UNAVAILABLE, on /api/v1 Quay's problem shape with its downstream_issue type. */
function sendUnavailable(request: FastifyRequest, reply: FastifyReply, message: string): FastifyReply {
  reply.header('retry-after', String(UNAVAILABLE_RETRY_AFTER_S));
  return reply.status(503).send(isApiPath(request)
    ? { detail: message, error_message: message, error_type: 'downstream_issue', status: 503, title: 'downstream_issue', type: '/api/v1/error/downstream_issue' }
    : { errors: [{ code: 'UNAVAILABLE', message: OCI_ERRORS.UNAVAILABLE.message, detail: { reason: message } }] });
}

/** Sends an OciError in the distribution spec's shape, an ApiError in Quay's API shape. */
export function sendError(reply: FastifyReply, error: OciError | ApiError): FastifyReply {
  if (error instanceof OciError) {
    for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
    return reply.status(error.status).send({ errors: [{ code: error.code, message: error.message, detail: error.detail ?? null }] });
  }
  return reply.status(error.status).send({
    detail: error.detail ?? error.message, error_message: error.message, error_type: error.errorType,
    status: error.status, title: error.errorType, type: `/api/v1/error/${error.errorType}`,
  });
}

/** Installs the error and not-found handlers on the app. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof OciError || error instanceof ApiError) return sendError(reply, error);
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Fastify's own client errors: malformed JSON, body too large, unsupported content type.
      if (isApiPath(request)) {
        return reply.status(status).send({ detail: error.message, error_message: error.message, error_type: 'invalid_request', status, title: 'invalid_request', type: '/api/v1/error/invalid_request' });
      }
      const code = status === 413 ? 'SIZE_INVALID' : status === 415 ? 'UNSUPPORTED' : 'MANIFEST_INVALID';
      return reply.status(status === 413 ? 413 : status).send({ errors: [{ code, message: error.message, detail: null }] });
    }
    // Storage first: a storage request refused (ECONNREFUSED in its cause) is not a database outage.
    if (isStorageFailure(error)) {
      request.log.warn({ err: error }, 'storage failed; answering 503');
      return sendUnavailable(request, reply, 'the storage backend failed; retry later');
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable; answering 503');
      return sendUnavailable(request, reply, 'the database is unavailable; retry later');
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.status(500).send(isApiPath(request)
      ? { detail: 'internal error', error_message: 'internal error', error_type: 'internal_error', status: 500 }
      : { errors: [{ code: 'UNKNOWN', message: 'internal error', detail: null }] });
  });
  app.setNotFoundHandler((request, reply) => {
    if (isApiPath(request)) return reply.status(404).send({ detail: 'Not Found', error_message: 'Not Found', error_type: 'not_found', status: 404 });
    return reply.status(404).send({ errors: [{ code: 'NAME_UNKNOWN', message: 'not found', detail: { path: request.url } }] });
  });
}
