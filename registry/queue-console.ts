/**
 * The queue console: bull-board (a well-kept BullMQ dashboard) under /admin/queues, showing every
 * queue of the fleet: counts, jobs, dead letters with their reason, retry, clean, pause.
 *
 * A retry from the console puts a dead letter back under its job id for one more run: bull-board
 * keeps the attempt count. `quayfleet dlq replay` gives it all its attempts back.
 *
 * Off unless QUAYFLEET_QUEUE_CONSOLE=true, and then for superusers only. Every request under the
 * prefix (the page, its JSON API and its static assets) passes one check first: no credentials
 * → 401 with a Basic challenge (so a browser asks for them), a valid user who is not a superuser,
 * or a robot → 403. Credentials are the Quay API's (user password, or an app token).
 *
 * The page authenticates with Basic credentials the browser replays on its own, so writes are
 * guarded against cross-site requests: an unsafe method needs a same-origin (or absent) Origin.
 * Adding jobs and editing job data are refused: payloads enter a queue only through its contract
 * (queues/*.ts), which validates them and gives them their dedupe id.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ALL_QUEUE_NAMES, contractFor } from '../queues/index.ts';
import type { QueueSource } from '../shared/runtime/queue-status.ts';
import { apiPrincipalOf } from './api/common.ts';
import { sendError } from './error-handler.ts';
import { ApiError, apiErrors } from './errors.ts';

/** Where the console is mounted. */
export const QUEUE_CONSOLE_PATH = '/admin/queues';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** bull-board API routes that would put payloads in a queue without its contract. */
const REFUSED_ROUTES = /\/api\/queues\/[^/]+\/(?:add|[^/]+\/update-data)$/;

/** Registers the console for the queues of `source` (call only when it is configured on). */
export async function registerQueueConsole(app: FastifyInstance, source: QueueSource): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(QUEUE_CONSOLE_PATH);
  createBullBoard({
    queues: ALL_QUEUE_NAMES.filter((name) => contractFor(name)).map((name) => new BullMQAdapter(source.queue(name))),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'quayfleet queues' } },
  });
  await app.register(async (scope) => {
    scope.addHook('onRequest', (request, reply) => guard(request, reply));
    await scope.register(serverAdapter.registerPlugin());
  }, { prefix: QUEUE_CONSOLE_PATH });
}

/** Answers (and so ends) a request the caller may not make; resolves without answering otherwise. */
async function guard(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  // Rendered here rather than thrown: bull-board installs its own error handler in its scope.
  const refuse = (error: ApiError) => {
    void reply.header('x-frame-options', 'DENY');
    return sendError(reply, error);
  };
  let principal;
  try {
    principal = await apiPrincipalOf(request);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    void reply.header('www-authenticate', 'Basic realm="quayfleet queue console", charset="UTF-8"');
    return void refuse(error);
  }
  if (principal.kind === 'anonymous') {
    void reply.header('www-authenticate', 'Basic realm="quayfleet queue console", charset="UTF-8"');
    return void refuse(apiErrors.unauthorized('Requires authentication'));
  }
  if (!principal.superuser || principal.kind === 'robot') return void refuse(apiErrors.forbidden('The queue console is for superusers'));
  if (!SAFE_METHODS.has(request.method)) {
    if (!sameOrigin(request)) return void refuse(apiErrors.forbidden('Cross-origin writes to the queue console are refused'));
    if (REFUSED_ROUTES.test(request.url.split('?')[0]!)) {
      return void refuse(apiErrors.forbidden('Jobs enter a queue through its contract (quayfleet commands or the API), not the console'));
    }
  }
  void reply.header('x-frame-options', 'DENY');
  request.log.info({ superuser: principal.username, method: request.method, url: request.url }, 'queue console request');
}

/** True when the request names no Origin (same-origin GETs, non-browser clients) or this host's. */
function sameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}
