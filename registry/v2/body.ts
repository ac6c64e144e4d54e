/**
 * Request bodies under /v2. Upload bodies are never buffered: the parser leaves the raw request
 * stream unread and the upload handlers stream it to storage. Manifest bodies are read into one
 * buffer bounded by MAXIMUM_MANIFEST_SIZE_BYTES (413 SIZE_INVALID past it), because the digest and
 * the stored bytes are over the whole document.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OciError } from '../errors.ts';

const MANIFEST_PATH = /\/manifests\/[^/?]+(?:\?|$)/;

/** Installs the /v2 body parsers on the (encapsulated) v2 plugin instance. */
export function installBodyParsers(app: FastifyInstance, maxManifestBytes: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request: FastifyRequest, payload, done) => {
    if (request.method !== 'PUT' || !MANIFEST_PATH.test(request.url)) {
      done(null, undefined); // streamed by the upload handlers from request.raw
      return;
    }
    readBounded(payload, maxManifestBytes, request.headers['content-length']).then((body) => done(null, body), (error: Error) => done(error));
  });
}

function tooLarge(limit: number): OciError {
  return new OciError('SIZE_INVALID', `manifest is larger than ${limit} bytes`, { limit }, { status: 413 });
}

async function readBounded(payload: AsyncIterable<Buffer>, limit: number, contentLength: string | undefined): Promise<Buffer> {
  if (contentLength !== undefined && Number(contentLength) > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of payload) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
