/**
 * A manifest may link a blob whose upload lease has run out as long as GC has not removed it yet
 * (Quay's manifest path ignores `uploadedblob.expires_at` too): a push slower than its lease still
 * succeeds, and the manifest then protects the blob. Once GC ran, the blob is gone and the push is
 * refused with MANIFEST_BLOB_UNKNOWN. The locking of both orders is in shared/db/manifests.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRepositoryGc } from '../../../shared/db/gc/run.ts';
import { startTestRegistry, type TestRegistry } from '../../../test/helpers/registry.ts';
import { V2Client, errorCode, expectStatus, imageManifest, sha256 } from '../test-support.ts';

const PASSWORD = 'password1';
const repo = 'alice/lease';
let registry: TestRegistry;
let client: V2Client;
let repositoryId: number;

beforeAll(async () => {
  registry = await startTestRegistry({ label: 'v2expiredlease', config: { PUSH_TEMP_TAG_EXPIRATION_SEC: 60 } });
  await registry.createUser('alice', PASSWORD);
  await registry.db.query(`UPDATE namespace SET removed_tag_expiration_s = 0 WHERE username = 'alice'`);
  repositoryId = (await registry.createRepository(repo)).id;
  client = new V2Client(registry.app, await registry.tokenFor('alice', PASSWORD, [`repository:${repo}:pull,push,delete`]));
});
afterAll(async () => registry?.close());

/** Uploads `blobs` and ends their leases a second ago, as a push slower than its lease finds them. */
async function uploadWithExpiredLeases(blobs: Buffer[]): Promise<void> {
  for (const blob of blobs) await client.uploadBlob(repo, blob, 'monolithic');
  const { rowCount } = await registry.db.query(
    `UPDATE uploadedblob ub SET expires_at = now() - interval '1 second' FROM imagestorage s
      WHERE ub.blob_id = s.id AND ub.repository_id = $1 AND s.content_checksum = ANY($2)`, [repositoryId, blobs.map(sha256)]);
  expect(rowCount).toBe(blobs.length);
}

async function gc(): Promise<void> {
  const outcome = await runRepositoryGc(registry.db, registry.deps.storage, repositoryId);
  expect(outcome.locked).toBe(true);
}

describe('a manifest PUT after its blobs\' upload leases expired', () => {
  it('links them while GC has not run, and the manifest then protects them from GC', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux","n":1}');
    const layer = randomBytes(500);
    await uploadWithExpiredLeases([config, layer]);
    // Blob HEAD and GET still go by live links only.
    expect((await client.request('HEAD', `/v2/${repo}/blobs/${sha256(layer)}`)).statusCode).toBe(404);
    const manifest = imageManifest(config, [layer]);
    expectStatus(await client.putManifest(repo, manifest, 'slow'), 201);
    await gc();
    for (const blob of [config, layer]) {
      const got = expectStatus(await client.request('GET', `/v2/${repo}/blobs/${sha256(blob)}`), 200);
      expect(got.rawPayload.equals(blob)).toBe(true);
    }
    // GC removed the expired leases; the manifest link is what keeps the blobs.
    const { rows } = await registry.db.query(`SELECT 1 FROM uploadedblob WHERE repository_id = $1`, [repositoryId]);
    expect(rows).toEqual([]);
  });

  it('is refused with MANIFEST_BLOB_UNKNOWN once GC collected them', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux","n":2}');
    const layer = randomBytes(500);
    await uploadWithExpiredLeases([config, layer]);
    await gc();
    expect((await registry.db.query(`SELECT 1 FROM imagestorage WHERE content_checksum = $1`, [sha256(layer)])).rowCount).toBe(0);
    const refused = await client.putManifest(repo, imageManifest(config, [layer]), 'late');
    expect(refused.statusCode).toBe(404);
    expect(errorCode(refused)).toBe('MANIFEST_BLOB_UNKNOWN');
  });
});
