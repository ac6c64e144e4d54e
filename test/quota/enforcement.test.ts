/**
 * Enforcement through the front end: Quay's endpoints/v2/test/test_quota_enforcement.py
 * (reference §6.6 #15, its xfail concurrency case included), the seed's 80 % / 83 % scenario
 * (QUOTA-8, -25, ERR-1, ERR-19), the system default (GAP-9) and quota notifications (QUOTA-22).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus, imageManifest, sha256, type V2Client } from '../../registry/v2/test-support.ts';
import { auditQuotaTotals } from '../../shared/db/quota/audit.ts';
import type { TestRegistry } from '../helpers/registry.ts';
import {
  ADMIN, bytesOf, clientFor, collect, createOrg, deleteTag, orgReport, QUOTA_DENIED, setQuota, startQuotaRegistry,
} from './push-support.ts';

let registry: TestRegistry;
beforeAll(async () => {
  registry = await startQuotaRegistry('quotaenforce');
});
afterAll(async () => {
  await registry?.close();
});

const KB = 1024;
const octet = { 'content-type': 'application/octet-stream' };

async function patch(client: V2Client, location: string, offset: number, bytes: Buffer) {
  return client.request('PATCH', location, { headers: { ...octet, 'content-range': `${offset}-${offset + bytes.length - 1}` }, payload: bytes });
}

describe('the seed scenario: Reject at 80 %, usage at 83 % (QUOTA-25)', () => {
  it('refuses the next push at upload start, on every retry, with the exact error', async () => {
    await createOrg(registry, 'testorg');
    const quotaId = await setQuota(registry, 'testorg', 104_857_600);
    const client = await clientFor(registry, ['testorg/ubuntu', 'testorg/nginx']);
    const ubuntu = await client.pushImage('testorg/ubuntu', 'latest', bytesOf(1_000), [bytesOf(27_958_066)]);
    await client.pushImage('testorg/nginx', 'latest', bytesOf(1_000), [bytesOf(59_230_659)]);
    expect((await orgReport(registry, 'testorg')).quota_bytes).toBe(87_190_725); // 83.15 % of 100 MiB
    for (const [type, percent] of [['Reject', 80], ['Warning', 50]] as const) {
      const added = await registry.api('POST', `/organization/testorg/quota/${quotaId}/limit`, { as: ADMIN, body: { type, threshold_percent: percent } });
      expect(added.statusCode).toBe(201);
    }
    for (let attempt = 0; attempt < 4; attempt++) { // podman's first try and its 3 retries
      const refused = await client.request('POST', '/v2/testorg/ubuntu/blobs/uploads/');
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toEqual(QUOTA_DENIED);
    }
    // A tag push adding no bytes is refused as well; a push by digest is not checked (Quay).
    expect((await client.putManifest('testorg/ubuntu', ubuntu, 'again')).json()).toEqual(QUOTA_DENIED);
    expectStatus(await client.putManifest('testorg/ubuntu', ubuntu), 201);
  });
});

describe('Quay test_quota_enforcement (#15)', () => {
  let client: V2Client;
  beforeAll(async () => {
    await createOrg(registry, 'enforced');
    await setQuota(registry, 'enforced', 10 * KB, [['Reject', 100]]);
    client = await clientFor(registry, ['enforced/repo']);
    await client.pushImage('enforced/repo', 'base', bytesOf(KB), [bytesOf(5 * KB)]); // 6 KB counted
  });

  it('lets a 2 KB upload in two 1 KB chunks through (202, 202, 201)', async () => {
    const bytes = bytesOf(2 * KB);
    const location = await client.startUpload('enforced/repo');
    expect((await patch(client, location, 0, bytes.subarray(0, KB))).statusCode).toBe(202);
    expect((await patch(client, location, KB, bytes.subarray(KB))).statusCode).toBe(202);
    expect((await client.request('PUT', `${location}?digest=${sha256(bytes)}`)).statusCode).toBe(201);
  });

  it('refuses the third 2 KB chunk of a 6 KB upload (6 + 4 KB in flight reach 10 KB), cancels it, then takes a 1-byte upload', async () => {
    const bytes = bytesOf(6 * KB);
    const location = await client.startUpload('enforced/repo');
    expect((await patch(client, location, 0, bytes.subarray(0, 2 * KB))).statusCode).toBe(202);
    expect((await patch(client, location, 2 * KB, bytes.subarray(2 * KB, 4 * KB))).statusCode).toBe(202);
    const refused = await patch(client, location, 4 * KB, bytes.subarray(4 * KB));
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toEqual(QUOTA_DENIED);
    expect((await client.request('GET', location)).statusCode).toBe(404); // the session is gone
    await client.uploadBlob('enforced/repo', bytesOf(1), 'patch');
  });

  it('refuses a tag push whose new blobs reach the limit, and leaves nothing of it; a push by digest is not checked', async () => {
    const [config, layer] = [bytesOf(100), bytesOf(4 * KB)];
    await client.uploadBlob('enforced/repo', config, 'monolithic');
    await client.uploadBlob('enforced/repo', layer, 'monolithic');
    const big = imageManifest(config, [layer]);
    const refused = await client.putManifest('enforced/repo', big, 'big');
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toEqual(QUOTA_DENIED);
    expect((await client.request('GET', `/v2/enforced/repo/manifests/${big.digest}`)).statusCode).toBe(404);
    expect((await orgReport(registry, 'enforced')).quota_bytes).toBe(6 * KB);
    expectStatus(await client.putManifest('enforced/repo', big), 201);
    expect((await orgReport(registry, 'enforced')).quota_bytes).toBe(6 * KB + 100 + 4 * KB);
  });

  it('refuses the upload start once over, and accepts again after GC brings usage under the limit', async () => {
    expect((await client.request('POST', '/v2/enforced/repo/blobs/uploads/')).json()).toEqual(QUOTA_DENIED);
    await registry.db.query(`UPDATE tag SET lifetime_end_ms = $1 WHERE lifetime_end_ms IS NULL AND hidden`, [Date.now() - 1000]);
    await collect(registry, 'enforced/repo');
    expect((await orgReport(registry, 'enforced')).quota_bytes).toBe(6 * KB);
    expect((await client.request('POST', '/v2/enforced/repo/blobs/uploads/')).statusCode).toBe(202);
  });
});

describe('concurrent pushes against one limit (Quay: xfail)', () => {
  it('let exactly one of three 6 KB pushes through a 10 KB limit', async () => {
    await createOrg(registry, 'racing');
    await setQuota(registry, 'racing', 10 * KB, [['Reject', 100]]);
    const client = await clientFor(registry, ['racing/a', 'racing/b', 'racing/c']);
    const images = await Promise.all(['a', 'b', 'c'].map(async (name) => {
      const [config, layer] = [bytesOf(KB), bytesOf(5 * KB)];
      await client.uploadBlob(`racing/${name}`, config, 'monolithic');
      await client.uploadBlob(`racing/${name}`, layer, 'patch');
      return { name, manifest: imageManifest(config, [layer]) };
    }));
    const results = await Promise.all(images.map((i) => client.putManifest(`racing/${i.name}`, i.manifest, 'latest')));
    expect(results.map((r) => r.statusCode).sort()).toEqual([201, 403, 403]);
    expect((await orgReport(registry, 'racing')).quota_bytes).toBe(6 * KB);
    expect(await auditQuotaTotals(registry.db)).toEqual([]);
  });
});

describe('DEFAULT_SYSTEM_REJECT_QUOTA_BYTES (GAP-9: the fallback)', () => {
  it('rejects namespaces without a quota at the default, yields to a quota, and applies again once it is deleted', async () => {
    const withDefault = await startQuotaRegistry('quotadefault', { DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: 5 * KB });
    try {
      await createOrg(withDefault, 'plain');
      const client = await clientFor(withDefault, ['plain/r']);
      const [config, layer] = [bytesOf(KB), bytesOf(5 * KB)];
      await client.uploadBlob('plain/r', config, 'monolithic');
      await client.uploadBlob('plain/r', layer, 'monolithic');
      expect((await client.putManifest('plain/r', imageManifest(config, [layer]), 'one')).json()).toEqual(QUOTA_DENIED);
      expectStatus(await client.putManifest('plain/r', imageManifest(config, [layer])), 201); // by digest: counted, not checked
      expect((await client.request('POST', '/v2/plain/r/blobs/uploads/')).json()).toEqual(QUOTA_DENIED);
      const listed = await withDefault.api('GET', '/organization/plain/quota', { as: ADMIN });
      expect(listed.json()).toEqual([{ id: null, limit_bytes: 5 * KB, default_config: true, limits: [], default_config_exists: true }]);
      const quotaId = await setQuota(withDefault, 'plain', 100 * KB, [['Reject', 90]]);
      expect((await client.request('POST', '/v2/plain/r/blobs/uploads/')).statusCode).toBe(202);
      expect((await withDefault.api('DELETE', `/organization/plain/quota/${quotaId}`, { as: ADMIN })).statusCode).toBe(204);
      expect((await client.request('POST', '/v2/plain/r/blobs/uploads/')).json()).toEqual(QUOTA_DENIED);
    } finally {
      await withDefault.close();
    }
  });

  it('enforces nothing with FEATURE_QUOTA_MANAGEMENT off', async () => {
    const off = await startQuotaRegistry('quotaoff', { FEATURE_QUOTA_MANAGEMENT: false, DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: 1 });
    try {
      await createOrg(off, 'free');
      const client = await clientFor(off, ['free/r']);
      await client.pushImage('free/r', 'one', bytesOf(KB), [bytesOf(KB)]);
      await client.pushImage('free/r', 'two', bytesOf(KB), [bytesOf(KB)]);
      expect((await off.api('GET', '/organization/free/quota', { as: ADMIN })).statusCode).toBe(404);
    } finally {
      await off.close();
    }
  });
});

describe('quota notifications (QUOTA-22)', () => {
  async function notificationJobs(namespaceId: number): Promise<{ event: string; threshold: number }[]> {
    const { rows } = await registry.db.query<{ payload: { event: string; eventData: { threshold_percent: number; namespace: string } } }>(
      `SELECT payload FROM outbox WHERE queue_name = 'notification' AND payload->'eventData'->>'namespace' = (SELECT username FROM namespace WHERE id = $1) ORDER BY id`,
      [namespaceId]);
    return rows.map((r) => ({ event: r.payload.event, threshold: r.payload.eventData.threshold_percent }));
  }

  it('enqueue quota_warning once when usage crosses a Warning limit, and again only after usage dropped below', async () => {
    const ns = await createOrg(registry, 'warned');
    await registry.db.query(`INSERT INTO namespacenotification (namespace_id, event, method, config_json) VALUES ($1, 'quota_warning', 'webhook', '{"url": "http://example.com/hook"}')`, [ns]);
    await setQuota(registry, 'warned', 10 * KB, [['Warning', 50], ['Reject', 100]]);
    const client = await clientFor(registry, ['warned/r']);
    await client.pushImage('warned/r', 'small', bytesOf(100), [bytesOf(KB)]);
    expect(await notificationJobs(ns)).toEqual([]);
    await client.pushImage('warned/r', 'over', bytesOf(100), [bytesOf(5 * KB)]); // crosses 50 %: not refused
    await client.pushImage('warned/r', 'more', bytesOf(100), [bytesOf(KB)]);
    expect(await notificationJobs(ns)).toEqual([{ event: 'quota_warning', threshold: 50 }]);
    await deleteTag(registry, 'warned/r', 'over');
    await deleteTag(registry, 'warned/r', 'more');
    await collect(registry, 'warned/r');
    await client.pushImage('warned/r', 'again', bytesOf(100), [bytesOf(5 * KB)]);
    expect(await notificationJobs(ns)).toEqual([{ event: 'quota_warning', threshold: 50 }, { event: 'quota_warning', threshold: 50 }]);
    const { rows } = await registry.db.query(`SELECT payload FROM outbox WHERE queue_name = 'notification' ORDER BY id DESC LIMIT 1`);
    expect(rows[0].payload).toMatchObject({
      event: 'quota_warning', notificationType: 'namespace', performerData: {},
      eventData: { namespace: 'warned', threshold_percent: 50, limit_bytes: 10 * KB, usage_bytes: expect.any(Number), usage_percent: expect.any(Number) },
    });
  });
});
