/**
 * Quota metrics: per-namespace series only for the QUOTA_METRICS_TOP_N namespaces using the most
 * bytes (bounded cardinality), backfill progress by state, and the registry total.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindQuotaGauges } from '../../shared/db/quota/metrics.ts';
import { quotaSettings } from '../../shared/db/quota/settings.ts';
import { registry } from '../../shared/metrics/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createBlob, createNamespace, createRepo, pushManifest, quotaConfig } from './fixtures.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase('quotametrics');
});
afterAll(async () => {
  await database?.drop();
});

async function series(name: string): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  return (await registry.getSingleMetric(name)!.get()).values as { labels: Record<string, string | number>; value: number }[];
}

describe('quota gauges', () => {
  it('export the top N namespaces by usage, backfill states and the registry total', async () => {
    const config = quotaConfig({ QUOTA_METRICS_TOP_N: 3 });
    for (let i = 1; i <= 8; i++) {
      const ns = await createNamespace(database.pool, `m${i}`);
      const repositoryId = await createRepo(database.pool, ns, 'r');
      await pushManifest(database.pool, config, { namespaceId: ns, repositoryId }, [await createBlob(database.pool, i * 1000)]);
    }
    await database.pool.query(`INSERT INTO userorganizationquota (namespace_id, limit_bytes) SELECT id, 50000 FROM namespace WHERE username = 'm8'`);
    const waiting = await createNamespace(database.pool, 'waiting');
    await database.pool.query(`INSERT INTO quotanamespacesize (namespace_user_id, backfill_complete, backfill_queued_ms) VALUES ($1, false, 1)`, [waiting]);
    await database.pool.query(`INSERT INTO quotaregistrysize (id, size_bytes, completed_ms) VALUES (1, 123456, 1)`);

    bindQuotaGauges(database.pool, quotaSettings(config));
    const used = await series('quayfleet_quota_namespace_used_bytes');
    expect(used.map((s) => [s.labels.namespace, s.value])).toEqual([['m8', 8000], ['m7', 7000], ['m6', 6000]]);
    const configured = await series('quayfleet_quota_namespace_configured_bytes');
    expect(configured.find((s) => s.labels.namespace === 'm8')?.value).toBe(50000);
    const states = Object.fromEntries((await series('quayfleet_quota_backfill_namespaces')).map((s) => [s.labels.state, s.value]));
    expect(states).toMatchObject({ waiting: 1, complete: 8 });
    expect((await series('quayfleet_quota_registry_size_bytes'))[0]!.value).toBe(123456);
  });
});
