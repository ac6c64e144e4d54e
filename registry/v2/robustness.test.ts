import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { OCI_IMAGE_MANIFEST } from '../manifests/media-types.ts';
import { V2Client, expectStatus, imageManifest, sha256 } from './test-support.ts';

let registry: TestRegistry;
let client: V2Client;
let base: URL;
const repo = 'alice/sturdy';

beforeAll(async () => {
  registry = await startTestRegistry({ label: 'v2robust', config: { MAXIMUM_MANIFEST_SIZE_BYTES: 2048 } });
  await registry.createUser('alice', 'password1');
  client = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', [`repository:${repo}:pull,push,delete`]));
  base = new URL(await registry.listen());
});
afterAll(async () => registry?.close());

/** Sends a request whose body stops after `sent` of `declared` bytes, then drops the connection. */
function truncatedRequest(method: string, path: string, declared: number, sent: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(base.port), base.hostname, () => {
      socket.write(`${method} ${path} HTTP/1.1\r\nHost: ${base.host}\r\nAuthorization: Bearer ${client.token}\r\n`
        + `Content-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n\r\n`);
      socket.write(randomBytes(sent), () => setTimeout(() => socket.destroy(), 50));
    });
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
}

// The server notices a dropped connection asynchronously; its claim must be released soon after.
async function waitForClaimRelease(uuid: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const { rows } = await registry.db.query<{ held: boolean }>(`SELECT storage_metadata ? 'claim' AS held FROM blobupload WHERE uuid = $1`, [uuid]);
    if (!rows[0]?.held) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`session ${uuid} is still claimed 5 s after its request was dropped`);
}

async function sessionBytes(uuid: string): Promise<number | undefined> {
  const { rows } = await registry.db.query<{ byte_count: number }>(`SELECT byte_count FROM blobupload WHERE uuid = $1`, [uuid]);
  return rows[0]?.byte_count;
}

describe('a burst of bad requests', () => {
  it('never answers 500, loses nothing, leaks no sessions, and a normal push and pull still work', async () => {
    const statuses: number[] = [];
    const record = async (p: Promise<{ statusCode: number }>) => statuses.push((await p).statusCode);
    const config = Buffer.from('{"sturdy":1}');
    await client.uploadBlob(repo, config);
    const good = imageManifest(config, []);
    const sessions: string[] = [];
    for (let i = 0; i < 3; i++) sessions.push(await client.startUpload(repo));
    const burst: Promise<unknown>[] = [];
    for (let round = 0; round < 5; round++) {
      burst.push(
        record(client.request('GET', '/v2/NOT_VALID/x/manifests/latest')),
        record(client.request('GET', `/v2/${repo}/blobs/sha256:123`)),
        record(client.request('GET', `/v2/${repo}/manifests/${'x'.repeat(200)}`)),
        record(client.request('PUT', `/v2/${repo}/manifests/junk`, { headers: { 'content-type': OCI_IMAGE_MANIFEST }, payload: '{"schemaVersion":2,' })),
        record(client.request('PUT', `/v2/${repo}/manifests/junk`, { headers: { 'content-type': OCI_IMAGE_MANIFEST }, payload: Buffer.alloc(5000, 32) })),
        record(client.request('PUT', `/v2/${repo}/manifests/junk`, { headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' }, payload: good.bytes })),
        record(client.request('PUT', `/v2/${repo}/manifests/junk`, { headers: { 'content-type': OCI_IMAGE_MANIFEST }, payload: imageManifest(randomBytes(3), []).bytes })),
        record(client.request('PATCH', `${sessions[round % 3]}`, { headers: { 'content-range': '5-9' }, payload: randomBytes(5) })),
        record(client.request('PATCH', `${sessions[round % 3]}`, { headers: { 'content-range': 'garbage' }, payload: randomBytes(5) })),
        record(client.request('PUT', `/v2/${repo}/blobs/uploads/7c9e6679-7425-40de-944b-e07fc1f90ae7?digest=${sha256('x')}`)),
        record(client.request('PUT', `${sessions[round % 3]}?digest=sha256:nope`)),
        record(new V2Client(registry.app, 'not.a.token').request('GET', `/v2/${repo}/tags/list`)),
        truncatedRequest('PATCH', sessions[round % 3]!, 100_000, 1000),
        truncatedRequest('POST', `/v2/${repo}/blobs/uploads/?digest=${sha256('whole')}`, 50_000, 10),
      );
    }
    await Promise.all(burst);
    expect(statuses.length).toBe(60);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);

    // The sessions the burst hit are unchanged and usable at once: no claim was left behind.
    for (const location of sessions) {
      const uuid = location.split('/').pop()!;
      await waitForClaimRelease(uuid);
      expect(await sessionBytes(uuid)).toBe(0);
      const blob = randomBytes(300);
      expectStatus(await client.request('PATCH', location, { headers: { 'content-range': '0-299' }, payload: blob }), 202);
      expectStatus(await client.request('PUT', `${location}?digest=${sha256(blob)}`), 201);
    }
    // Only sessions nobody completed remain: the truncated monolithic POSTs' own sessions (5 at most).
    const { rows } = await registry.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM blobupload`);
    expect(rows[0]!.n).toBeLessThanOrEqual(5);
    expect(await registry.db.query(`SELECT 1 FROM tag WHERE name = 'junk'`).then((r) => r.rowCount)).toBe(0);

    // A normal push and pull over the real listener still work.
    const layer = randomBytes(10_000);
    const pushed = await client.pushImage(repo, 'after-burst', Buffer.from('{"after":1}'), [layer]);
    const response = await fetch(new URL(`/v2/${repo}/manifests/after-burst`, base), { headers: { authorization: `Bearer ${client.token}`, accept: OCI_IMAGE_MANIFEST } });
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(pushed.bytes)).toBe(true);
    const blob = await fetch(new URL(`/v2/${repo}/blobs/${sha256(layer)}`, base), { headers: { authorization: `Bearer ${client.token}` } });
    expect(Buffer.from(await blob.arrayBuffer()).equals(layer)).toBe(true);
  });
});
