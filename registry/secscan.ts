/**
 * The webhook Clair v4's notifier calls (Quay's endpoints/secscan.py, reference §3.2):
 * `POST /secscan/notification` with `{notification_id, callback}`. With `SECURITY_SCANNER_V4_PSK`
 * set, `Authorization: Bearer <JWT>` must verify with HS256 and the base64-decoded key, carry
 * `nbf`, `iat` and `exp`, and not be issued in the future (30 s of clock skew allowed); otherwise
 * 401. A body that is not a JSON object with both fields is 400 (whatever its content type, as in
 * Quay). One `secscanv4` job per notification id goes through the outbox; a duplicate webhook is
 * the same job, so it is a no-op answered 200 "Okay". Gated on FEATURE_SECURITY_SCANNER and
 * FEATURE_SECURITY_NOTIFICATIONS with an endpoint configured, as its worker is: 404 otherwise.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errors as joseErrors, jwtVerify } from 'jose';
import { z } from 'zod';
import { token } from '../queues/fields.ts';
import { secscanv4 } from '../queues/secscanv4.ts';
import type { QuayConfig } from '../shared/config/index.ts';
import { enqueueInTransaction } from '../shared/db/outbox.ts';
import { withTransaction } from '../shared/db/pool.ts';
import { apiErrors } from './errors.ts';

/** Clock skew tolerated on `nbf`, `iat` and `exp`. */
const CLOCK_SKEW_S = 30;

const body = z.object({ notification_id: token, callback: z.string().min(1) });

/** Whether Clair notifications are accepted: both flags on and an endpoint to page from. */
export function securityNotificationsEnabled(quay: QuayConfig): boolean {
  return quay.FEATURE_SECURITY_SCANNER && quay.FEATURE_SECURITY_NOTIFICATIONS && Boolean(quay.SECURITY_SCANNER_V4_ENDPOINT);
}

async function verifyPsk(request: FastifyRequest, psk: string): Promise<void> {
  const match = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)\s*$/.exec(request.headers.authorization ?? '');
  if (!match) throw apiErrors.unauthorized('Missing or malformed bearer token');
  try {
    const { payload } = await jwtVerify(match[1]!, Buffer.from(psk, 'base64'), {
      algorithms: ['HS256'], requiredClaims: ['nbf', 'iat', 'exp'], clockTolerance: CLOCK_SKEW_S,
    });
    if (payload.iat! > Date.now() / 1000 + CLOCK_SKEW_S) throw new joseErrors.JWTClaimValidationFailed('"iat" is in the future', payload, 'iat', 'check_failed');
  } catch (error) {
    request.log.warn({ err: error }, 'Could not verify jwt');
    throw apiErrors.unauthorized('Could not verify jwt');
  }
}

function parseBody(raw: unknown): z.output<typeof body> {
  let parsed: unknown;
  try {
    parsed = typeof raw === 'string' ? JSON.parse(raw) : raw;
  } catch {
    throw apiErrors.badRequest('Invalid JSON body');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw apiErrors.badRequest('Body must be a JSON object');
  const result = body.safeParse(parsed);
  if (!result.success) throw apiErrors.badRequest(`Invalid notification: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return result.data;
}

/** Registers /secscan routes. */
export async function registerSecScanRoutes(app: FastifyInstance): Promise<void> {
  await app.register(async (scope) => {
    // Quay parses the body as JSON whatever its content type.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, raw, done) => done(null, raw));
    // Quay ignores the Content-Type; one Fastify cannot parse ('', '!') would be its 415 in the
    // OCI shape (found by the reliability fuzz), so the body is read as text whatever it says.
    scope.addHook('onRequest', async (request) => {
      if (request.headers['content-type'] !== undefined) request.headers['content-type'] = 'text/plain';
    });

    scope.post('/secscan/notification', async (request, reply) => {
      const quay = scope.deps.config.quay;
      if (!securityNotificationsEnabled(quay)) throw apiErrors.notFound();
      if (quay.SECURITY_SCANNER_V4_PSK) await verifyPsk(request, quay.SECURITY_SCANNER_V4_PSK);
      const { notification_id: notificationId } = parseBody(request.body);
      await withTransaction(scope.deps.db, (tx) => enqueueInTransaction(tx, secscanv4, { v: 1, notificationId }));
      scope.deps.onOutboxWrite?.();
      return reply.type('text/plain').send('Okay');
    });

    scope.get('/secscan/_internal_ping', async (_request, reply) => reply.type('text/plain').send('true'));
  });
}
