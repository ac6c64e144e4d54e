import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registry as metricsRegistry } from '../../../shared/metrics/index.ts';
import { startTestRegistry, type TestRegistry } from '../../../test/helpers/registry.ts';
import { V2Client, expectStatus, sha256 } from '../test-support.ts';

let registry: TestRegistry;
let client: V2Client;
const locationDirs: string[] = [];
const repo = 'alice/replicated';

beforeAll(async () => {
  for (const name of ['first', 'second']) locationDirs.push(await fs.mkdtemp(path.join(os.tmpdir(), `quayfleet-${name}-`)));
  // Two locations, replication on: blobs land in `default` and must reach `second` too.
  registry = await startTestRegistry({
    label: 'v2effects',
    config: {
      FEATURE_STORAGE_REPLICATION: true,
      STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE: true,
      DISTRIBUTED_STORAGE_CONFIG: { default: ['LocalStorage', { storage_path: locationDirs[0] }], second: ['LocalStorage', { storage_path: locationDirs[1] }] },
      DISTRIBUTED_STORAGE_PREFERENCE: ['default'],
      DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: ['default', 'second'],
    },
  });
  await registry.createUser('alice', 'password1');
  client = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', [`repository:${repo}:pull,push`]));
});
afterAll(async () => {
  await registry?.close();
  for (const dir of locationDirs) await fs.rm(dir, { recursive: true, force: true });
});

describe('work a manifest push causes', () => {
  it('enqueues replication of each blob missing from a default location, and repo_push notifications with Quay event_data', async () => {
    const config = Buffer.from('{"r":1}');
    const layer = randomBytes(100);
    await client.uploadBlob(repo, config);
    const { rows: [repository] } = await registry.db.query<{ id: number }>(`SELECT id FROM repository WHERE name = 'replicated'`);
    const { rows: [notification] } = await registry.db.query<{ uuid: string }>(
      `INSERT INTO repositorynotification (repository_id, event, method, config_json) VALUES ($1, 'repo_push', 'webhook', '{"url":"http://example.com"}') RETURNING uuid::text`,
      [repository!.id]);
    await client.uploadBlob(repo, layer);
    const manifest = await client.pushImage(repo, 'v1', config, [layer]);
    expect(manifest.digest).toMatch(/^sha256:/);

    const replication = await registry.db.query<{ payload: { storageId: number; namespaceId: number; digest: string } }>(
      `SELECT payload FROM outbox WHERE queue_name = 'imagestoragereplication' ORDER BY id`);
    expect(replication.rows.map((r) => r.payload.digest).sort()).toEqual([sha256(config), sha256(layer)].sort());
    const notifications = await registry.db.query<{ payload: Record<string, unknown> }>(`SELECT payload FROM outbox WHERE queue_name = 'notification'`);
    expect(notifications.rows.length).toBe(1);
    const host = registry.deps.config.quay.SERVER_HOSTNAME;
    expect(notifications.rows[0]!.payload).toMatchObject({
      notificationUuid: notification!.uuid, event: 'repo_push',
      eventData: {
        repository: repo, namespace: 'alice', name: 'replicated', docker_url: `${host}/${repo}`,
        homepage: `http://${host}/repository/${repo}`, updated_tags: ['v1'],
      },
      performerData: { entity_name: 'alice' },
    });
  });

  it('counts pushes, pulls and bytes with Quay metric names and labels', async () => {
    const value = async (name: string, labels: Record<string, string | number> = {}): Promise<number> => {
      const metric = (await metricsRegistry.getMetricsAsJSON()).find((m) => m.name === name) as { values: { labels: Record<string, unknown>; value: number }[] } | undefined;
      return (metric?.values ?? []).filter((v) => Object.entries(labels).every(([k, l]) => String(v.labels[k]) === String(l))).reduce((s, v) => s + v.value, 0);
    };
    const pushes = await value('quay_registry_image_pushes_total', { protocol: 'v2', pstatus: 201, pmedia_type: 'application/vnd.oci.image.manifest.v1+json' });
    const pushed = await value('quay_registry_image_pushed_bytes_total');
    const pulls = await value('quay_registry_image_pulls_total', { protocol: 'v2', ref: 'tag', status: 200 });
    const misses = await value('quay_registry_image_pulls_total', { protocol: 'v2', ref: 'manifest', status: 404 });
    const pulledBytes = await value('quay_registry_image_pulled_estimated_bytes_total', { protocol: 'v2' });
    const layer = randomBytes(1000);
    await client.pushImage(repo, 'metrics', Buffer.from('{"m":1}'), [layer]);
    expectStatus(await client.request('GET', `/v2/${repo}/manifests/metrics`), 200);
    await client.request('GET', `/v2/${repo}/manifests/${sha256('missing')}`);
    expect(await value('quay_registry_image_pushes_total', { protocol: 'v2', pstatus: 201, pmedia_type: 'application/vnd.oci.image.manifest.v1+json' })).toBe(pushes + 1);
    expect(await value('quay_registry_image_pushed_bytes_total')).toBe(pushed + 1000 + 7);
    expect(await value('quay_registry_image_pulls_total', { protocol: 'v2', ref: 'tag', status: 200 })).toBe(pulls + 1);
    expect(await value('quay_registry_image_pulls_total', { protocol: 'v2', ref: 'manifest', status: 404 })).toBe(misses + 1);
    expect(await value('quay_registry_image_pulled_estimated_bytes_total', { protocol: 'v2' })).toBe(pulledBytes + 1000);
  });
});
