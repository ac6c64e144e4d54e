/**
 * The OCI distribution API (spec v1.1) under /v2. Repository names may contain slashes, so every
 * repository endpoint goes through one wildcard route and `parseV2Path`; this file is the table
 * from (endpoint, method) to handler. Every response carries Docker-Distribution-API-Version.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { bearerTokenOf } from '../auth/access.ts';
import { unauthorized } from '../auth/scope.ts';
import { OciError } from '../errors.ts';
import { deleteBlob, getBlob } from './blobs.ts';
import { installBodyParsers } from './body.ts';
import { createV2Context, type V2Context } from './context.ts';
import { listCatalog, listReferrersOf, listTags } from './listing.ts';
import { deleteManifest } from './manifests/delete.ts';
import { getManifest } from './manifests/get.ts';
import { putManifest } from './manifests/put.ts';
import { parseV2Path, type V2Endpoint } from './paths.ts';
import { patchUpload } from './uploads/chunk.ts';
import { completeUpload } from './uploads/complete.ts';
import { startUpload } from './uploads/start.ts';
import { cancelUpload, uploadStatus } from './uploads/status.ts';

type EndpointOf<K extends V2Endpoint['kind']> = Extract<V2Endpoint, { kind: K }>;
type Handler<E> = (ctx: V2Context, request: FastifyRequest, reply: FastifyReply, endpoint: E) => Promise<unknown>;
type RouteTable = { [K in V2Endpoint['kind']]: Partial<Record<string, Handler<EndpointOf<K>>>> };

const ROUTES: RouteTable = {
  manifest: {
    GET: (c, q, r, e) => getManifest(c, q, r, e.name, e.reference),
    HEAD: (c, q, r, e) => getManifest(c, q, r, e.name, e.reference),
    PUT: (c, q, r, e) => putManifest(c, q, r, e.name, e.reference),
    DELETE: (c, q, r, e) => deleteManifest(c, q, r, e.name, e.reference),
  },
  blob: {
    GET: (c, q, r, e) => getBlob(c, q, r, e.name, e.digest),
    HEAD: (c, q, r, e) => getBlob(c, q, r, e.name, e.digest),
    DELETE: (c, q, r, e) => deleteBlob(c, q, r, e.name, e.digest),
  },
  uploads: { POST: (c, q, r, e) => startUpload(c, q, r, e.name) },
  upload: {
    GET: (c, q, r, e) => uploadStatus(c, q, r, e.name, e.uuid),
    PATCH: (c, q, r, e) => patchUpload(c, q, r, e.name, e.uuid),
    PUT: (c, q, r, e) => completeUpload(c, q, r, e.name, e.uuid),
    DELETE: (c, q, r, e) => cancelUpload(c, q, r, e.name, e.uuid),
  },
  tags: { GET: (c, q, r, e) => listTags(c, q, r, e.name) },
  referrers: { GET: (c, q, r, e) => listReferrersOf(c, q, r, e.name, e.digest) },
};

/** Registers the /v2 routes (as an encapsulated plugin: its body parsers apply to /v2 only). */
export async function registerV2Routes(app: FastifyInstance): Promise<void> {
  const ctx = createV2Context(app.deps);
  app.addHook('onClose', async () => ctx.pullLogs.close());
  installBodyParsers(app, app.deps.config.quay.MAXIMUM_MANIFEST_SIZE_BYTES);
  app.addHook('onSend', async (_request, reply) => {
    reply.header('Docker-Distribution-API-Version', 'registry/2.0');
  });

  // The version check: 401 with a challenge without a valid token, so `docker login` works (as Quay).
  app.get('/v2/', async (request) => {
    if (!(await bearerTokenOf(request))) throw unauthorized(app.deps.config);
    return {};
  });
  app.get('/v2/_catalog', (request, reply) => listCatalog(ctx, request, reply));
  app.route({
    method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'],
    url: '/v2/*',
    handler: async (request, reply) => {
      const endpoint = parseV2Path((request.params as { '*': string })['*']);
      if (!endpoint) throw new OciError('NAME_UNKNOWN', 'no such endpoint', { path: request.url });
      // The table is keyed by kind, so the handler found takes this endpoint's type.
      const handler = ROUTES[endpoint.kind][request.method] as Handler<V2Endpoint> | undefined;
      if (!handler) throw new OciError('UNSUPPORTED', `${request.method} is not supported here`, null, { status: 405 });
      return handler(ctx, request, reply, endpoint);
    },
  });
}
