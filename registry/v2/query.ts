/** Query parameters of /v2 requests. */
import type { FastifyRequest } from 'fastify';

/** A single-valued query parameter, or undefined (absent, or given more than once). */
export function queryParam(request: FastifyRequest, key: string): string | undefined {
  const value = (request.query as Record<string, unknown> | undefined)?.[key];
  return typeof value === 'string' ? value : undefined;
}
