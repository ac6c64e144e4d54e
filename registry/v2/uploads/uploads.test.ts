import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRegistryApp } from '../../app.ts';
import { startTestRegistry, type TestRegistry } from '../../../test/helpers/registry.ts';
import { V2Client, errorCode, expectStatus, sha256 } from '../test-support.ts';

let registry: TestRegistry;
let client: V2Client;
const repo = 'alice/uploads';

beforeAll(async () => {
  registry = await startTestRegistry({ label: 'v2uploads' });
  await registry.createUser('alice', 'password1');
  client = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', [
    `repository:${repo}:pull,push,delete`, 'repository:alice/other:pull,push', 'repository:alice/mounted:pull,push',
  ]));
});
afterAll(async () => registry?.close());

async function count(table: string, where = 'true', params: unknown[] = []): Promise<number> {
  const { rows } = await registry.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`, params);
  return rows[0]!.n;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

describe('upload sessions', () => {
  it('starts a session with Location, Docker-Upload-UUID and Range 0-0, reports and cancels it', async () => {
    const started = expectStatus(await client.request('POST', `/v2/${repo}/blobs/uploads/`), 202);
    const uuid = started.headers['docker-upload-uuid'] as string;
    expect(started.headers.location).toBe(`/v2/${repo}/blobs/uploads/${uuid}`);
    expect(started.headers.range).toBe('0-0');
    const patched = expectStatus(await client.request('PATCH', started.headers.location as string, { payload: randomBytes(10) }), 202);
    expect(patched.headers.range).toBe('0-9');
    const status = expectStatus(await client.request('GET', started.headers.location as string), 204);
    expect(status.headers.range).toBe('0-9');
    expectStatus(await client.request('DELETE', started.headers.location as string), 204);
    const gone = await client.request('GET', started.headers.location as string);
    expect([gone.statusCode, errorCode(gone)]).toEqual([404, 'BLOB_UPLOAD_UNKNOWN']);
    expect(await count('blobupload', 'uuid = $1', [uuid])).toBe(0);
    expect((await filesUnder(registry.storagePath)).filter((f) => f.includes(uuid))).toEqual([]);
  });

  it('takes chunks in order with Content-Range and answers 416 with the current Range out of order', async () => {
    const location = await client.startUpload(repo);
    const blob = randomBytes(300);
    expectStatus(await client.request('PATCH', location, { headers: { 'content-range': '0-99' }, payload: blob.subarray(0, 100) }), 202);
    const skipped = await client.request('PATCH', location, { headers: { 'content-range': '150-299' }, payload: blob.subarray(150) });
    expect([skipped.statusCode, errorCode(skipped), skipped.headers.range]).toEqual([416, 'RANGE_INVALID', '0-99']);
    const repeated = await client.request('PATCH', location, { headers: { 'content-range': '0-99' }, payload: blob.subarray(0, 100) });
    expect([repeated.statusCode, repeated.headers.range]).toEqual([416, '0-99']);
    expectStatus(await client.request('PATCH', location, { headers: { 'content-range': '100-199' }, payload: blob.subarray(100, 200) }), 202);
    // The last chunk rides on the PUT.
    expectStatus(await client.request('PUT', `${location}?digest=${sha256(blob)}`, { headers: { 'content-range': '200-299' }, payload: blob.subarray(200) }), 201);
    expect((await client.request('GET', `/v2/${repo}/blobs/${sha256(blob)}`)).rawPayload.equals(blob)).toBe(true);
  });

  it('streams chunked bodies without Content-Length or Content-Range', async () => {
    const location = await client.startUpload(repo);
    const pieces = [randomBytes(1000), randomBytes(2000), randomBytes(3000)];
    for (const piece of pieces) {
      const response = await client.request('PATCH', location, { payload: Readable.from([piece.subarray(0, 10), piece.subarray(10)]) as unknown as Buffer });
      expectStatus(response, 202);
    }
    const blob = Buffer.concat(pieces);
    expectStatus(await client.request('PUT', `${location}?digest=${sha256(blob)}`), 201);
    expect((await client.request('GET', `/v2/${repo}/blobs/${sha256(blob)}`)).rawPayload.equals(blob)).toBe(true);
  });

  it('records the blob, its placement, a lease until PUSH_TEMP_TAG_EXPIRATION_SEC and the GC job for its expiry', async () => {
    const blob = randomBytes(64);
    const before = Date.now();
    const digest = await client.uploadBlob(repo, blob, 'patch');
    const { rows } = await registry.db.query<{ size: number; placements: number; expires: Date; sessions: number }>(
      `SELECT s.image_size AS size, (SELECT count(*)::int FROM imagestorageplacement p WHERE p.storage_id = s.id) AS placements,
              (SELECT max(expires_at) FROM uploadedblob u WHERE u.blob_id = s.id) AS expires
       FROM imagestorage s WHERE s.content_checksum = $1`, [digest]);
    expect(rows[0]!.size).toBe(64);
    expect(rows[0]!.placements).toBe(1);
    const leaseMs = rows[0]!.expires.getTime() - before;
    expect(leaseMs).toBeGreaterThan(3590_000);
    expect(leaseMs).toBeLessThan(3700_000);
    const outbox = await registry.db.query<{ payload: { reason: string; dueAtS: number }; run_at: Date }>(
      `SELECT payload, run_at FROM outbox WHERE queue_name = 'garbagecollection' AND payload->>'reason' = 'upload_lease' ORDER BY id DESC LIMIT 1`);
    expect(Math.abs(outbox.rows[0]!.run_at.getTime() - rows[0]!.expires.getTime())).toBeLessThan(1000);
    const files = await filesUnder(registry.storagePath);
    expect(files).toContain(path.join('sha256', digest.slice(7, 9), digest.slice(7)));
  });

  it('keeps one blob row and one object when the same blob is uploaded twice', async () => {
    const blob = randomBytes(128);
    await client.uploadBlob(repo, blob, 'patch');
    await client.uploadBlob(repo, blob, 'monolithic');
    expect(await count('imagestorage', 'content_checksum = $1', [sha256(blob)])).toBe(1);
    expect((await filesUnder(registry.storagePath)).filter((f) => f.startsWith('uploads'))).toEqual([]);
  });

  it('refuses a digest that does not match the bytes and records nothing', async () => {
    const blob = randomBytes(200);
    const wrong = sha256('something else');
    const location = await client.startUpload(repo);
    const uuid = location.split('/').pop()!;
    expectStatus(await client.request('PATCH', location, { payload: blob }), 202);
    const put = await client.request('PUT', `${location}?digest=${wrong}`);
    expect([put.statusCode, errorCode(put)]).toEqual([400, 'DIGEST_INVALID']);
    expect(await count('imagestorage', 'content_checksum = ANY($1)', [[wrong, sha256(blob)]])).toBe(0);
    expect(await count('blobupload', 'uuid = $1', [uuid])).toBe(0);
    expect((await filesUnder(registry.storagePath)).filter((f) => f.includes(uuid))).toEqual([]);
    const monolithic = await client.request('POST', `/v2/${repo}/blobs/uploads/?digest=${wrong}`, { payload: blob });
    expect([monolithic.statusCode, errorCode(monolithic)]).toEqual([400, 'DIGEST_INVALID']);
    expect((await client.request('HEAD', `/v2/${repo}/blobs/${sha256(blob)}`)).statusCode).toBe(404);
  });

  it.each([
    ['a malformed digest', 'sha256:xyz'],
    ['an unsupported algorithm', `sha512:${'a'.repeat(128)}`],
    ['no digest', undefined],
  ])('refuses %s on completion with DIGEST_INVALID', async (_name, digest) => {
    const location = await client.startUpload(repo);
    const response = await client.request('PUT', digest === undefined ? location : `${location}?digest=${digest}`);
    expect([response.statusCode, errorCode(response)]).toEqual([400, 'DIGEST_INVALID']);
  });

  it('answers BLOB_UPLOAD_UNKNOWN for unknown and malformed upload ids, and for another repository\'s session', async () => {
    for (const id of ['0b5e6f3a-1111-4222-8333-444455556666', 'not-a-uuid']) {
      for (const method of ['GET', 'PATCH', 'PUT', 'DELETE'] as const) {
        const response = await client.request(method, `/v2/${repo}/blobs/uploads/${id}?digest=${sha256('x')}`, { payload: method === 'PATCH' ? 'x' : undefined });
        expect([method, response.statusCode, errorCode(response)]).toEqual([method, 404, 'BLOB_UPLOAD_UNKNOWN']);
      }
    }
    const location = await client.startUpload(repo);
    const foreign = await client.request('GET', location.replace(repo, 'alice/other'));
    expect([foreign.statusCode, errorCode(foreign)]).toEqual([404, 'BLOB_UPLOAD_UNKNOWN']);
  });

  it('refuses malformed or inconsistent Content-Range and Content-Length without changing the session', async () => {
    const location = await client.startUpload(repo);
    const malformed = await client.request('PATCH', location, { headers: { 'content-range': 'bytes=zero-ten' }, payload: 'abc' });
    expect([malformed.statusCode, errorCode(malformed)]).toEqual([416, 'RANGE_INVALID']);
    const backwards = await client.request('PATCH', location, { headers: { 'content-range': '5-2' }, payload: 'abc' });
    expect(backwards.statusCode).toBe(416);
    const mismatch = await client.request('PATCH', location, { headers: { 'content-range': '0-9' }, payload: 'abc' });
    expect([mismatch.statusCode, errorCode(mismatch)]).toEqual([400, 'SIZE_INVALID']);
    // Oversized: a chunked body longer than its Content-Range.
    const oversized = await client.request('PATCH', location, { headers: { 'content-range': '0-2' }, payload: Readable.from([Buffer.from('abcdef')]) as unknown as Buffer });
    expect([oversized.statusCode, errorCode(oversized)]).toEqual([400, 'SIZE_INVALID']);
    expect((await client.request('GET', location)).headers.range).toBe('0-0');
    expect(await count('blobupload', `uuid = $1 AND byte_count = 0`, [location.split('/').pop()])).toBe(1);
  });

  it('refuses to delete blobs (405 UNSUPPORTED) and hides blobs not linked to the repository', async () => {
    const digest = await client.uploadBlob('alice/other', randomBytes(32));
    const unlinked = await client.request('GET', `/v2/${repo}/blobs/${digest}`);
    expect([unlinked.statusCode, errorCode(unlinked)]).toEqual([404, 'BLOB_UNKNOWN']);
    await client.uploadBlob(repo, randomBytes(32));
    const deleted = await client.request('DELETE', `/v2/${repo}/blobs/${digest}`);
    expect([deleted.statusCode, errorCode(deleted)]).toEqual([405, 'UNSUPPORTED']);
    const badDigest = await client.request('GET', `/v2/${repo}/blobs/sha256:nothex`);
    expect([badDigest.statusCode, errorCode(badDigest)]).toEqual([400, 'DIGEST_INVALID']);
  });

  it('mounts a blob from a repository the caller may pull, and falls back to a session otherwise', async () => {
    const blob = randomBytes(77);
    const digest = await client.uploadBlob(repo, blob);
    const mounted = expectStatus(await client.request('POST', `/v2/alice/mounted/blobs/uploads/?mount=${digest}&from=${repo}`), 201);
    expect(mounted.headers.location).toBe(`/v2/alice/mounted/blobs/${digest}`);
    expect(mounted.headers['docker-content-digest']).toBe(digest);
    expect((await client.request('GET', `/v2/alice/mounted/blobs/${digest}`)).rawPayload.equals(blob)).toBe(true);
    // Not in the source, a source the token does not cover, a malformed source name: new sessions.
    for (const from of ['alice/other', 'bob/private', 'NOT/valid']) {
      const fallback = await client.request('POST', `/v2/alice/mounted/blobs/uploads/?mount=${sha256(from)}&from=${from}`);
      expect([from, fallback.statusCode]).toEqual([from, 202]);
      expect(fallback.headers['docker-upload-uuid']).toBeDefined();
    }
  });

  it('lets one request at a time append: a second one meanwhile answers BLOB_UPLOAD_INVALID', async () => {
    const location = await client.startUpload(repo);
    const slow = new PassThrough();
    const first = client.request('PATCH', location, { payload: slow as unknown as Buffer });
    slow.write(randomBytes(100));
    // Wait until the first request holds the claim.
    const uuid = location.split('/').pop()!;
    for (let i = 0; i < 100 && (await count('blobupload', `uuid = $1 AND storage_metadata ? 'claim'`, [uuid])) === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const second = await client.request('PATCH', location, { payload: randomBytes(10) });
    expect([second.statusCode, errorCode(second)]).toEqual([400, 'BLOB_UPLOAD_INVALID']);
    slow.end(randomBytes(50));
    expect(expectStatus(await first, 202).headers.range).toBe('0-149');
  });

  it('refuses a final chunk longer than its Content-Range and keeps the session usable', async () => {
    const blob = randomBytes(40);
    const location = await client.startUpload(repo);
    expectStatus(await client.request('PATCH', location, { headers: { 'content-range': '0-19' }, payload: blob.subarray(0, 20) }), 202);
    const oversized = await client.request('PUT', `${location}?digest=${sha256(blob)}`, {
      headers: { 'content-range': '20-39' }, payload: Readable.from([blob.subarray(20), Buffer.from('extra')]) as unknown as Buffer,
    });
    expect([oversized.statusCode, errorCode(oversized)]).toEqual([400, 'SIZE_INVALID']);
    expectStatus(await client.request('PUT', `${location}?digest=${sha256(blob)}`, { headers: { 'content-range': '20-39' }, payload: blob.subarray(20) }), 201);
    expect((await client.request('GET', `/v2/${repo}/blobs/${sha256(blob)}`)).rawPayload.equals(blob)).toBe(true);
  });

  it('answers a well-formed BLOB_UNKNOWN when the rows name a placement whose object is gone', async () => {
    const blob = randomBytes(90);
    const digest = await client.uploadBlob(repo, blob);
    await fs.rm(path.join(registry.storagePath, 'sha256', digest.slice(7, 9), digest.slice(7)));
    const response = await client.request('GET', `/v2/${repo}/blobs/${digest}`);
    expect([response.statusCode, errorCode(response)]).toEqual([404, 'BLOB_UNKNOWN']);
    expect(Number(response.headers['content-length'])).toBe(response.rawPayload.length);
    // Uploading it again repairs the object.
    await client.uploadBlob(repo, blob);
    expect((await client.request('GET', `/v2/${repo}/blobs/${digest}`)).rawPayload.equals(blob)).toBe(true);
  });

  it('refuses invalid repository names with NAME_INVALID', async () => {
    for (const name of ['Alice/Upper', 'alice/bad..name', 'alice/-dash']) {
      const response = await client.request('POST', `/v2/${name}/blobs/uploads/`);
      expect([name, response.statusCode, errorCode(response)]).toEqual([name, 400, 'NAME_INVALID']);
    }
  });
});

describe('an upload session across a front-end restart', () => {
  it('continues a session in a rebuilt app and verifies the digest by reading the stored bytes', async () => {
    const blob = randomBytes(50_000);
    const location = await client.startUpload(repo);
    expectStatus(await client.request('PATCH', location, { headers: { 'content-range': '0-19999' }, payload: blob.subarray(0, 20_000) }), 202);
    // A new app on the same database and storage: no in-memory upload state survives.
    const rebuilt = await buildRegistryApp(registry.deps);
    try {
      const second = new V2Client(rebuilt, client.token);
      expectStatus(await second.request('PATCH', location, { headers: { 'content-range': '20000-49999' }, payload: blob.subarray(20_000) }), 202);
      const done = expectStatus(await second.request('PUT', `${location}?digest=${sha256(blob)}`), 201);
      expect(done.headers['docker-content-digest']).toBe(sha256(blob));
      expect((await second.request('GET', `/v2/${repo}/blobs/${sha256(blob)}`)).rawPayload.equals(blob)).toBe(true);
      // The same path with a wrong digest is caught by the read-back verification.
      const other = await client.startUpload(repo);
      expectStatus(await client.request('PATCH', other, { payload: blob.subarray(0, 100) }), 202);
      const refused = await second.request('PUT', `${other}?digest=${sha256('not these bytes')}`, { payload: blob.subarray(100, 200) });
      expect([refused.statusCode, errorCode(refused)]).toEqual([400, 'DIGEST_INVALID']);
    } finally {
      await rebuilt.close();
    }
  });
});
