/**
 * A manifest is served only while it is reachable as Quay's lookup_manifest decides: an alive tag
 * (visible, or hidden: a push-by-digest lease, a referrer's tag) points at it, or at an index that
 * lists it as a child. DELETE by digest makes it unknown at once, long before GC removes its row;
 * the time machine can still bring it back.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../../test/helpers/registry.ts';
import { OCI_EMPTY, OCI_IMAGE_MANIFEST } from '../../manifests/media-types.ts';
import { V2Client, errorCode, expectStatus, imageIndex, imageManifest, sha256, type BuiltManifest } from '../test-support.ts';

const PASSWORD = 'password1';
const LEASE_S = 60;
let registry: TestRegistry;
let client: V2Client;
let clock = Date.now();
const repo = 'alice/reach';

beforeAll(async () => {
  registry = await startTestRegistry({ label: 'v2reach', now: () => clock, config: { PUSH_TEMP_TAG_EXPIRATION_SEC: LEASE_S, IGNORE_UNKNOWN_MEDIATYPES: true } });
  await registry.createUser('alice', PASSWORD);
  client = await freshClient();
});
afterAll(async () => registry?.close());

// Tokens expire with the clock; a test that moves it signs in again.
async function freshClient(): Promise<V2Client> {
  return new V2Client(registry.app, await registry.tokenFor('alice', PASSWORD, [`repository:${repo}:pull,push,delete`]));
}

async function later(seconds: number): Promise<void> {
  clock += seconds * 1000;
  client = await freshClient();
}

/** [GET status, GET code, HEAD status] of manifest `reference`. */
async function served(reference: string): Promise<[number, string | undefined, number]> {
  const get = await client.request('GET', `/v2/${repo}/manifests/${reference}`);
  const head = await client.request('HEAD', `/v2/${repo}/manifests/${reference}`);
  return [get.statusCode, get.statusCode === 200 ? undefined : errorCode(get), head.statusCode];
}

const UNKNOWN: [number, string, number] = [404, 'MANIFEST_UNKNOWN', 404];
const OK: [number, undefined, number] = [200, undefined, 200];

async function rowExists(digest: string): Promise<boolean> {
  return ((await registry.db.query(`SELECT 1 FROM manifest WHERE digest = $1`, [digest])).rowCount ?? 0) > 0;
}

async function tagNames(): Promise<string[]> {
  return (expectStatus(await client.request('GET', `/v2/${repo}/tags/list`), 200).json() as { tags: string[] }).tags;
}

/** Pushes `count` single-layer images by digest (each kept by a hidden lease) and returns them. */
async function pushByDigest(count: number): Promise<BuiltManifest[]> {
  const pushed: BuiltManifest[] = [];
  for (let i = 0; i < count; i++) {
    const config = Buffer.from(JSON.stringify({ child: randomBytes(4).toString('hex') }));
    await client.uploadBlob(repo, config, 'monolithic');
    const m = imageManifest(config, []);
    expectStatus(await client.putManifest(repo, m), 201);
    pushed.push(m);
  }
  return pushed;
}

describe('DELETE by digest', () => {
  it('makes an image unknown to GET and HEAD by digest at once, its tags gone from the listing, while the row waits for GC', async () => {
    const m = await client.pushImage(repo, 'one', Buffer.from('{"image":1}'), [randomBytes(40)]);
    expectStatus(await client.putManifest(repo, m, 'two'), 201);
    expect(await served(m.digest)).toEqual(OK);
    expectStatus(await client.request('DELETE', `/v2/${repo}/manifests/${m.digest}`), 202);
    expect(await served(m.digest)).toEqual(UNKNOWN);
    expect(await served('one')).toEqual(UNKNOWN);
    expect(await served('two')).toEqual(UNKNOWN);
    expect(await tagNames()).not.toContain('one');
    expect(await rowExists(m.digest)).toBe(true);
    const again = await client.request('DELETE', `/v2/${repo}/manifests/${m.digest}`);
    expect([again.statusCode, errorCode(again)]).toEqual([404, 'MANIFEST_UNKNOWN']);
  });

  it('makes an index unknown at once; its children stay served only while a tag of their own lives', async () => {
    const children = await pushByDigest(2);
    const index = imageIndex(children);
    expectStatus(await client.putManifest(repo, index, 'multi'), 201);
    // The children's push-by-digest leases end; the tagged index keeps them reachable.
    await later(LEASE_S + 1);
    for (const child of children) expect(await served(child.digest)).toEqual(OK);
    // A child reachable only through its index has no tag of its own to delete (Quay: 404).
    const child = await client.request('DELETE', `/v2/${repo}/manifests/${children[0]!.digest}`);
    expect([child.statusCode, errorCode(child)]).toEqual([404, 'MANIFEST_UNKNOWN']);

    expectStatus(await client.request('DELETE', `/v2/${repo}/manifests/${index.digest}`), 202);
    expect(await served(index.digest)).toEqual(UNKNOWN);
    expect(await served('multi')).toEqual(UNKNOWN);
    for (const c of children) expect(await served(c.digest)).toEqual(UNKNOWN);
    expect(await rowExists(index.digest)).toBe(true);
  });

  it('ends the hidden lease of a manifest pushed by digest', async () => {
    const [m] = await pushByDigest(1);
    expect(await served(m!.digest)).toEqual(OK);
    expectStatus(await client.request('DELETE', `/v2/${repo}/manifests/${m!.digest}`), 202);
    expect(await served(m!.digest)).toEqual(UNKNOWN);
  });

  it('leaves the time machine able to restore the tag, which serves the digest again', async () => {
    const m = await client.pushImage(repo, 'restorable', Buffer.from('{"image":2}'), [randomBytes(40)]);
    expectStatus(await client.request('DELETE', `/v2/${repo}/manifests/${m.digest}`), 202);
    expect(await served(m.digest)).toEqual(UNKNOWN);
    const history = await registry.api('GET', `/repository/${repo}/tag/?specificTag=restorable`, { as: ['alice', PASSWORD] });
    expect((history.json() as { tags: { manifest_digest: string; end_ts?: number }[] }).tags).toEqual([
      expect.objectContaining({ manifest_digest: m.digest, end_ts: Math.floor(clock / 1000) }),
    ]);
    const restored = await registry.api('POST', `/repository/${repo}/tag/restorable/restore`, { as: ['alice', PASSWORD], body: { manifest_digest: m.digest } });
    expect(restored.statusCode).toBe(200);
    expect(await served(m.digest)).toEqual(OK);
    expect(await served('restorable')).toEqual(OK);
  });
});

describe('reachability without a DELETE', () => {
  it('serves a manifest pushed by digest while its hidden lease lives, and not after, before GC runs', async () => {
    const [m] = await pushByDigest(1);
    expect(await served(m!.digest)).toEqual(OK);
    await later(LEASE_S + 1);
    expect(await served(m!.digest)).toEqual(UNKNOWN);
    expect(await rowExists(m!.digest)).toBe(true);
  });

  it('stops serving a manifest by digest once the tag moves away and nothing else keeps it', async () => {
    const first = await client.pushImage(repo, 'moving', Buffer.from('{"moving":1}'), [randomBytes(40)]);
    await client.pushImage(repo, 'moving', Buffer.from('{"moving":2}'), [randomBytes(40)]);
    expect(await served(first.digest)).toEqual(UNKNOWN);
  });

  it('lists only reachable referrers; the Quay API lists only alive tags', async () => {
    const subject = await client.pushImage(repo, 'signed', Buffer.from('{"subject":1}'), [randomBytes(40)]);
    const empty = Buffer.from('{}');
    await client.uploadBlob(repo, empty);
    const referrers: BuiltManifest[] = [];
    for (const kind of ['sig', 'sbom']) {
      const r = imageManifest(empty, [], {
        artifactType: `application/vnd.example.${kind}`, config: { mediaType: OCI_EMPTY, digest: sha256(empty), size: empty.length }, layers: [],
        subject: { mediaType: OCI_IMAGE_MANIFEST, digest: subject.digest, size: subject.bytes.length },
      });
      expectStatus(await client.putManifest(repo, r), 201);
      referrers.push(r);
    }
    const listed = async () => (expectStatus(await client.request('GET', `/v2/${repo}/referrers/${subject.digest}`), 200).json() as { manifests: { digest: string }[] }).manifests.map((d) => d.digest);
    expect(await listed()).toEqual(referrers.map((r) => r.digest));
    expectStatus(await client.request('DELETE', `/v2/${repo}/manifests/${referrers[0]!.digest}`), 202);
    expect(await listed()).toEqual([referrers[1]!.digest]);
    expect(await served(referrers[0]!.digest)).toEqual(UNKNOWN);

    expectStatus(await client.request('DELETE', `/v2/${repo}/manifests/${subject.digest}`), 202);
    const view = await registry.api('GET', `/repository/${repo}`, { as: ['alice', PASSWORD] });
    expect(Object.keys((view.json() as { tags: Record<string, unknown> }).tags)).not.toContain('signed');
  });
});
