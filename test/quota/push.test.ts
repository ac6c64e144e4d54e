/**
 * Accounting through the front end (seed QUOTA-1, -2, -9, -18, QAPI-7..9): pushes over /v2, tag
 * deletes over the Quay API, GC, and the totals the API reports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus, imageIndex, imageManifest, type V2Client } from '../../registry/v2/test-support.ts';
import { auditQuotaTotals } from '../../shared/db/quota/audit.ts';
import type { TestRegistry } from '../helpers/registry.ts';
import { ADMIN, bytesOf, clientFor, collect, createOrg, deleteTag, orgReport, OWNER, setQuota, startQuotaRegistry } from './push-support.ts';

let registry: TestRegistry;
beforeAll(async () => {
  registry = await startQuotaRegistry('quotapush');
});
afterAll(async () => {
  await registry?.close();
});

describe('the same image under two tags (QUOTA-18)', () => {
  it('counts once, and deleting one tag leaves the total unchanged', async () => {
    await createOrg(registry, 'dedup');
    const client = await clientFor(registry, ['dedup/ubuntu']);
    const [config, layerA, layerB] = [bytesOf(300), bytesOf(20_000), bytesOf(7_000)];
    const m = await client.pushImage('dedup/ubuntu', 'tag1', config, [layerA, layerB]);
    expectStatus(await client.putManifest('dedup/ubuntu', m, 'tag2'), 201);
    const size = config.length + layerA.length + layerB.length;
    expect((await orgReport(registry, 'dedup')).quota_bytes).toBe(size);
    await deleteTag(registry, 'dedup/ubuntu', 'tag1');
    await collect(registry, 'dedup/ubuntu');
    expect((await orgReport(registry, 'dedup')).quota_bytes).toBe(size);
    await deleteTag(registry, 'dedup/ubuntu', 'tag2');
    await collect(registry, 'dedup/ubuntu');
    expect((await orgReport(registry, 'dedup')).quota_bytes).toBe(0);
  });
});

describe('two images sharing no blobs (QAPI-7..9)', () => {
  it('sum exactly, per repository and for the organization', async () => {
    await createOrg(registry, 'testorg');
    await setQuota(registry, 'testorg', 104_857_600);
    const client = await clientFor(registry, ['testorg/ubuntu', 'testorg/nginx']);
    const ubuntu = [bytesOf(1_500), bytesOf(60_000), bytesOf(27_000)];
    const nginx = [bytesOf(1_700), bytesOf(90_000), bytesOf(41_000), bytesOf(5_000)];
    await client.pushImage('testorg/ubuntu', 'latest', ubuntu[0]!, ubuntu.slice(1));
    await client.pushImage('testorg/nginx', 'latest', nginx[0]!, nginx.slice(1));
    const sum = (parts: Buffer[]) => parts.reduce((n, b) => n + b.length, 0);

    const listed = await registry.api('GET', '/repository?last_modified=true&namespace=testorg&popularity=true&public=true&quota=true', { as: OWNER });
    const repositories = (listed.json() as { repositories: { name: string; quota_report: unknown }[] }).repositories;
    expect(Object.fromEntries(repositories.map((r) => [r.name, r.quota_report]))).toEqual({
      ubuntu: { quota_bytes: sum(ubuntu), configured_quota: 104_857_600 },
      nginx: { quota_bytes: sum(nginx), configured_quota: 104_857_600 },
    });
    const org = (await registry.api('GET', '/organization/testorg', { as: OWNER })).json() as Record<string, unknown>;
    expect(org.quotas).toEqual([{ id: expect.any(Number), limit_bytes: 104_857_600, limits: [] }]);
    expect(org.quota_report).toEqual({
      quota_bytes: sum(ubuntu) + sum(nginx), configured_quota: 104_857_600, running_backfill: 'complete', backfill_status: 'complete',
    });
    // Without ?quota=true the listing has no quota_report.
    const plain = await registry.api('GET', '/repository?namespace=testorg', { as: OWNER });
    expect((plain.json() as { repositories: Record<string, unknown>[] }).repositories[0]).not.toHaveProperty('quota_report');
  });
});

describe('manifest lists (QUOTA-2)', () => {
  async function pushIndex(client: V2Client, repository: string, tag: string, shared: Buffer, own: Buffer[]) {
    const children = [];
    for (const layer of own) {
      const config = bytesOf(200);
      for (const blob of [config, shared, layer]) await client.uploadBlob(repository, blob, 'monolithic');
      const child = imageManifest(config, [shared, layer]);
      expectStatus(await client.putManifest(repository, child), 201);
      children.push({ child, config });
    }
    expectStatus(await client.putManifest(repository, imageIndex(children.map((c) => c.child)), tag), 201);
    return children.reduce((n, c) => n + c.config.length, 0) + shared.length + own.reduce((n, b) => n + b.length, 0);
  }

  it('count every child manifest\'s blobs once (a layer the platforms share once), the index bytes not at all', async () => {
    await createOrg(registry, 'multi');
    const client = await clientFor(registry, ['multi/app']);
    const expected = await pushIndex(client, 'multi/app', 'v1', bytesOf(50_000), [bytesOf(9_000), bytesOf(11_000)]);
    expect((await orgReport(registry, 'multi')).quota_bytes).toBe(expected);
    // The index's tag goes: GC collects the index, then the children no tag keeps (their push-by-digest tags expired).
    await deleteTag(registry, 'multi/app', 'v1');
    await collect(registry, 'multi/app');
    expect((await orgReport(registry, 'multi')).quota_bytes).toBe(0);
    expect(await auditQuotaTotals(registry.db)).toEqual([]);
  });
});

describe('user namespaces', () => {
  it('are counted like organizations, and a user reads their own quota', async () => {
    const client = await clientFor(registry, [`${OWNER[0]}/mine`]);
    const parts = [bytesOf(400), bytesOf(3_000)];
    await client.pushImage(`${OWNER[0]}/mine`, 'latest', parts[0]!, parts.slice(1));
    expect((await registry.api('POST', `/superuser/users/${OWNER[0]}/quota`, { as: ADMIN, body: { limit_bytes: 5_000 } })).statusCode).toBe(201);
    const own = (await registry.api('GET', '/user/quota', { as: OWNER })).json() as { limit_bytes: number }[];
    expect(own).toEqual([{ id: expect.any(Number), limit_bytes: 5_000, default_config: false, limits: [], default_config_exists: false }]);
    const listed = await registry.api('GET', `/repository?namespace=${OWNER[0]}&quota=true`, { as: OWNER });
    expect((listed.json() as { repositories: { quota_report: unknown }[] }).repositories[0]!.quota_report).toEqual({ quota_bytes: 3_400, configured_quota: 5_000 });
  });
});
