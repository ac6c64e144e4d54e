/**
 * The dry run lists exactly what the real run then deletes (tags, manifests, leases, blobs and
 * bytes), changes nothing, and the audit finds storage and database in agreement afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditStorage } from '../../shared/db/gc/audit.ts';
import { collectBlobs } from '../../shared/db/gc/collect.ts';
import { dryRun, ScopeNotFoundError } from '../../shared/db/gc/dry-run.ts';
import { drainPendingDeletions } from '../../shared/db/gc/pending-deletions.ts';
import { runRepositoryGc } from '../../shared/db/gc/run.ts';
import { orphanBlobIds } from '../../shared/db/gc/sweep.ts';
import { createGcFixture, type GcFixture } from './fixtures.ts';
import { buildScenario, type Scenario } from './scenario.ts';

let f: GcFixture;
beforeAll(async () => { f = await createGcFixture('gcdryrun'); });
afterAll(async () => { await f.close(); });

const TABLES = ['tag', 'manifest', 'manifestblob', 'manifestchild', 'manifestlabel', 'label', 'uploadedblob', 'imagestorage', 'imagestorageplacement', 'pendingstoragedeletion'];

async function snapshot(): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const table of TABLES) out[table] = (await f.pool.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => r.id);
  return out;
}

function removed(before: number[], after: number[]): number[] {
  const kept = new Set(after);
  return before.filter((id) => !kept.has(id));
}

async function collectAll(s: Scenario, namespaces = s.namespaces): Promise<void> {
  for (const ns of namespaces) {
    for (const repositoryId of ns.repositories) {
      const outcome = await runRepositoryGc(f.pool, f.storage, repositoryId, { nowMs: s.nowMs });
      expect(outcome.locked).toBe(true);
    }
  }
}

describe('dry run', () => {
  it('equals what the real run deletes in a namespace, and changes nothing itself', async () => {
    const s = await buildScenario(f, { seed: 7, prefix: 'dra' });
    const target = s.namespaces[1]!;
    const before = await snapshot();
    const plan = await dryRun(f.pool, { namespace: target.name }, { nowMs: s.nowMs });
    expect(await snapshot()).toEqual(before);
    expect(plan.tags.length + plan.manifests.length + plan.blobs.length).toBeGreaterThan(0);

    await collectAll(s, [target]);
    const after = await snapshot();
    expect(removed(before.tag!, after.tag!)).toEqual(plan.tags.map((t) => t.id));
    expect(removed(before.manifest!, after.manifest!)).toEqual(plan.manifests.map((m) => m.id));
    expect(removed(before.imagestorage!, after.imagestorage!)).toEqual(plan.blobs.map((b) => b.id));
    // Leases of collected blobs elsewhere may go too; every planned lease is gone.
    expect(removed(before.uploadedblob!, after.uploadedblob!)).toEqual(expect.arrayContaining(plan.leases.map((l) => l.id)));
    const figures = plan.namespaces.find((n) => n.namespaceId === target.id)!;
    expect(figures).toMatchObject({ namespace: target.name, tags: plan.tags.length, manifests: plan.manifests.length });
    expect(plan.totals.bytes).toBe(plan.blobs.reduce((n, b) => n + b.sizeBytes, 0));
  });

  it('equals the real run over the whole registry (repositories, then the sweep), and the audit is clean after', async () => {
    const s = await buildScenario(f, { seed: 11, prefix: 'drb' });
    const before = await snapshot();
    const plan = await dryRun(f.pool, {}, { nowMs: s.nowMs });
    const { rows } = await f.pool.query<{ id: number }>(`SELECT id FROM repository ORDER BY id`);
    for (const { id } of rows) await runRepositoryGc(f.pool, f.storage, id, { nowMs: s.nowMs });
    const orphans = await orphanBlobIds(f.pool, { afterId: 0, toId: Number.MAX_SAFE_INTEGER }, s.nowMs);
    const swept = await collectBlobs(f.pool, orphans, { nowMs: s.nowMs });
    await drainPendingDeletions(f.pool, f.storage, { ids: swept.pendingIds });
    const after = await snapshot();
    expect(removed(before.tag!, after.tag!)).toEqual(plan.tags.map((t) => t.id));
    expect(removed(before.manifest!, after.manifest!)).toEqual(plan.manifests.map((m) => m.id));
    expect(removed(before.imagestorage!, after.imagestorage!)).toEqual(plan.blobs.map((b) => b.id));
    expect(removed(before.uploadedblob!, after.uploadedblob!)).toEqual(plan.leases.map((l) => l.id));

    const audit = await auditStorage(f.pool, f.storage, f.storage.locations, { nowMs: s.nowMs });
    expect(audit).toMatchObject({ ok: true, storageConsistent: true, danglingLabels: [], pendingDeletions: 0 });
  });

  it('rejects an unknown scope', async () => {
    await expect(dryRun(f.pool, { namespace: 'nope' })).rejects.toThrow(ScopeNotFoundError);
    await expect(dryRun(f.pool, { repository: 'nope/x' })).rejects.toThrow(ScopeNotFoundError);
  });
});
