import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { NotFoundError, StorageError } from '../shared/storage/errors.ts';
import { installErrorHandling, isStorageFailure } from './error-handler.ts';

function app(error: () => Error) {
  const instance = Fastify({ logger: false });
  installErrorHandling(instance);
  instance.get('/v2/ns/repo/blobs/x', async () => { throw error(); });
  instance.get('/api/v1/repository/ns/repo', async () => { throw error(); });
  return instance;
}

describe('storage failures in the front end', () => {
  it('answer 503 UNAVAILABLE with Retry-After, not a 500 (storage down, answering errors, disk full)', async () => {
    const backendDown = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:17480'), { code: 'ECONNREFUSED' });
    for (const error of [
      new StorageError('InternalError (HTTP 500): We encountered an internal error', { driver: 'RadosGWStorage', operation: 'put', key: 'uploads/u' }),
      new StorageError('connect ECONNREFUSED', { driver: 'RadosGWStorage', operation: 'put', cause: backendDown }),
      new StorageError('ENOSPC: no space left on device, write', { driver: 'LocalStorage', operation: 'put' }),
      new Error('upload failed', { cause: new StorageError('timeout', { operation: 'stat' }) }),
    ]) {
      const server = app(() => error);
      const oci = await server.inject({ url: '/v2/ns/repo/blobs/x' });
      expect(oci.statusCode).toBe(503);
      expect(oci.headers['retry-after']).toBe('5');
      expect(oci.json()).toEqual({ errors: [{ code: 'UNAVAILABLE', message: 'service unavailable', detail: { reason: 'the storage backend failed; retry later' } }] });
      const api = await server.inject({ url: '/api/v1/repository/ns/repo' });
      expect(api.statusCode).toBe(503);
      expect(api.json()).toMatchObject({ error_type: 'downstream_issue', status: 503 });
    }
  });

  it('leaves the typed answers routes handle (a missing object) and other bugs alone', async () => {
    expect(isStorageFailure(new NotFoundError('no such object', { operation: 'get' }))).toBe(false);
    expect(isStorageFailure(new Error('boom'))).toBe(false);
    const server = app(() => new Error('boom'));
    expect((await server.inject({ url: '/v2/ns/repo/blobs/x' })).statusCode).toBe(500);
  });
});
