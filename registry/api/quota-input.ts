/**
 * Input of the quota API, validated with Quay's answers (endpoints/api/namespacequota.py and
 * data/model/namespacequota.py): 400 with Quay's messages for a missing or non-integer value, a
 * size that is not positive ("Invalid quota size limit value: '<v>'") or beyond Postgres' bigint
 * ("Unsupported quota size limit."), a threshold outside 1..100, an unknown limit type. Ids in
 * paths that cannot be ids answer 404, never 500.
 *
 * `limit_bytes` may exceed 2^53, where a JSON number loses digits, so the quota routes read JSON
 * with `installExactJsonParser`, which keeps the body text: the size is taken from its exact
 * digits and stored as a string.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { QUOTA_TYPES, type QuotaType } from '../../shared/db/quota/limits.ts';
import { apiErrors } from '../errors.ts';

/** Postgres bigint's largest value: the largest quota (QUOTA-11). */
export const MAX_LIMIT_BYTES = 9_223_372_036_854_775_807n;

const rawBodies = new WeakMap<FastifyRequest, string>();

/** Replaces the scope's JSON parser with one that also keeps the body text (an empty body is no body). */
export function installExactJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    rawBodies.set(request, text);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(apiErrors.badRequest('Invalid JSON body'), undefined);
    }
  });
}

/** The request body as an object; Quay's 400 for anything else. */
export function bodyObject(request: FastifyRequest): Record<string, unknown> {
  const body = request.body ?? {};
  if (typeof body !== 'object' || Array.isArray(body) || body === null) throw apiErrors.badRequest('Invalid request: the body must be a JSON object');
  return body as Record<string, unknown>;
}

// jsonschema's wording, which Quay's validate_json_request returns as the message.
function notInteger(value: unknown): never {
  throw apiErrors.badRequest(`${JSON.stringify(value)} is not of type 'integer'`);
}

/** `limit_bytes` of `request` as exact decimal digits, validated as Quay does. */
export function limitBytesOf(request: FastifyRequest, body: Record<string, unknown>): string {
  const value = body.limit_bytes;
  if (value === undefined) throw apiErrors.badRequest("'limit_bytes' is a required property");
  if (typeof value !== 'number' || !Number.isInteger(value)) notInteger(value);
  const digits = /"limit_bytes"\s*:\s*(-?\d+)\s*[,}]/.exec(rawBodies.get(request) ?? '')?.[1];
  const exact = digits !== undefined ? BigInt(digits) : BigInt(value);
  if (exact <= 0n) throw apiErrors.badRequest(`Invalid quota size limit value: '${exact}'`);
  if (exact > MAX_LIMIT_BYTES) throw apiErrors.badRequest('Unsupported quota size limit.');
  return exact.toString();
}

/** A limit's type, case-insensitive as in Quay, in Quay's spelling. */
export function quotaTypeOf(value: unknown): QuotaType {
  if (value === undefined) throw apiErrors.badRequest("'type' is a required property");
  if (typeof value !== 'string') throw apiErrors.badRequest(`${JSON.stringify(value)} is not of type 'string'`);
  const type = QUOTA_TYPES.find((t) => t.toLowerCase() === value.toLowerCase());
  if (!type) throw apiErrors.badRequest('Quota type must be one of [Warning, Reject]');
  return type;
}

/** A limit's `threshold_percent`: an integer from 1 to 100. */
export function thresholdOf(value: unknown): number {
  if (value === undefined) throw apiErrors.badRequest("'threshold_percent' is a required property");
  if (typeof value !== 'number' || !Number.isInteger(value)) notInteger(value);
  if (value < 1 || value > 100) throw apiErrors.badRequest('Quota limit threshold must be between 1 and 100');
  return value;
}

// Ids are bigserial: more digits than that cannot name a row (and would overflow the query).
const id = z.string().regex(/^\d{1,18}$/).transform(Number);

// Postgres text cannot hold NUL: such a name cannot exist.
const name = z.string().min(1).refine((s) => !s.includes('\u0000'));

const pathParams = z.object({
  org: name.optional(),
  namespace: name.optional(),
  quota_id: id.optional(),
  limit_id: id.optional(),
});

/** The route's path parameters; an id that cannot exist answers 404. */
export function pathOf(request: FastifyRequest): z.output<typeof pathParams> {
  const parsed = pathParams.safeParse(request.params ?? {});
  if (!parsed.success) throw apiErrors.notFound();
  return parsed.data;
}
