/**
 * Running totals at the database level, Quay's data/model/test/test_quota.py ported (reference
 * §6.6 #1-#4, #7, #10-#12), plus what Quay cannot pass: concurrent pushes of one new blob and a
 * push racing GC stay exact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteUnusedManifests } from '../../shared/db/gc/manifests.ts';
import { GcTally } from '../../shared/db/gc/tally.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { auditQuotaTotals } from '../../shared/db/quota/audit.ts';
import { backfillNamespace } from '../../shared/db/quota/backfill.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  bytes, collect, createBlob, createNamespace, createRepo, deleteTag, namespaceTotal, pushManifest, quotaConfig, repositoryTotal, type Blob,
} from './fixtures.ts';

let database: TestDatabase;
const config = quotaConfig();

beforeAll(async () => {
  database = await createTestDatabase('quotaaccounting');
});
afterAll(async () => {
  await database?.drop();
});

describe('Quay TestQuota setup', () => {
  // org1: repo1 {m1: b1+b2, m2: b1+b3}, repo2 {m3: b1+b4}; org2/repo1 {b1+b2}; every manifest also has one config blob.
  let org1: number;
  let repo1: number;
  let repo2: number;
  let org2: number;
  let blobs: Record<'config' | 'b1' | 'b2' | 'b3' | 'b4' | 'b5', Blob>;

  beforeAll(async () => {
    const pool = database.pool;
    org1 = await createNamespace(pool, 'org1');
    org2 = await createNamespace(pool, 'org2');
    repo1 = await createRepo(pool, org1, 'repo1');
    repo2 = await createRepo(pool, org1, 'repo2');
    const org2repo = await createRepo(pool, org2, 'repo1');
    blobs = {
      config: await createBlob(pool, 1000), b1: await createBlob(pool, 101), b2: await createBlob(pool, 202),
      b3: await createBlob(pool, 303), b4: await createBlob(pool, 404), b5: await createBlob(pool, 505),
    };
    const { config: c, b1, b2, b3, b4 } = blobs;
    // Quota off while the registry fills: no totals exist, so the backfill computes them (#1).
    const off = quotaConfig({ FEATURE_QUOTA_MANAGEMENT: false });
    await pushManifest(pool, off, { namespaceId: org1, repositoryId: repo1 }, [c, b1, b2], 'm1');
    await pushManifest(pool, off, { namespaceId: org1, repositoryId: repo1 }, [c, b1, b3], 'm2');
    await pushManifest(pool, off, { namespaceId: org1, repositoryId: repo2 }, [c, b1, b4], 'm3');
    await pushManifest(pool, off, { namespaceId: org2, repositoryId: org2repo }, [c, b1, b2], 'm');
    expect(await namespaceTotal(pool, org1)).toBeUndefined();
  });

  it('#1 backfill counts every blob once per namespace and once per repository', async () => {
    const { config: c, b1, b2, b3, b4 } = blobs;
    expect(await backfillNamespace(database.pool, org1)).toBe('computed');
    expect(await backfillNamespace(database.pool, org2)).toBe('computed');
    expect(await namespaceTotal(database.pool, org1)).toEqual({ size: bytes(c, b1, b2, b3, b4), complete: true });
    expect((await repositoryTotal(database.pool, repo1))?.size).toBe(bytes(c, b1, b2, b3));
    expect((await repositoryTotal(database.pool, repo2))?.size).toBe(bytes(c, b1, b4));
    expect((await namespaceTotal(database.pool, org2))?.size).toBe(bytes(c, b1, b2));
    expect(await backfillNamespace(database.pool, org1)).toBe('already_complete');
  });

  it('#2 a new manifest with a new blob grows the namespace and its repository only', async () => {
    const { config: c, b1, b5 } = blobs;
    const before = { ns: (await namespaceTotal(database.pool, org1))!.size, r2: (await repositoryTotal(database.pool, repo2))!.size };
    await pushManifest(database.pool, config, { namespaceId: org1, repositoryId: repo1 }, [c, b1, b5], 'm5');
    expect((await namespaceTotal(database.pool, org1))!.size).toBe(before.ns + b5.size);
    expect((await repositoryTotal(database.pool, repo2))!.size).toBe(before.r2);
  });

  it('#3 collecting m3 subtracts only the blob nothing else in the namespace links', async () => {
    const { b4 } = blobs;
    const before = (await namespaceTotal(database.pool, org1))!.size;
    await deleteTag(database.pool, repo2, 'm3');
    await collect(database.pool, repo2);
    expect((await namespaceTotal(database.pool, org1))!.size).toBe(before - b4.size);
    expect((await repositoryTotal(database.pool, repo2))!.size).toBe(0);
    expect(await auditQuotaTotals(database.pool)).toEqual([]);
  });
});

describe('first manifest and backfill required (#10, #11)', () => {
  it('starts the totals of a namespace whose only manifest this is', async () => {
    const ns = await createNamespace(database.pool, 'fresh');
    const repo = await createRepo(database.pool, ns, 'r');
    const [a, b] = [await createBlob(database.pool, 10), await createBlob(database.pool, 20)];
    await pushManifest(database.pool, config, { namespaceId: ns, repositoryId: repo }, [a, b]);
    expect(await namespaceTotal(database.pool, ns)).toEqual({ size: 30, complete: true });
    expect(await repositoryTotal(database.pool, repo)).toEqual({ size: 30, complete: true });
  });

  it('writes nothing when another manifest exists and no totals do', async () => {
    const ns = await createNamespace(database.pool, 'older');
    const repo = await createRepo(database.pool, ns, 'r');
    const a = await createBlob(database.pool, 10);
    await pushManifest(database.pool, quotaConfig({ FEATURE_QUOTA_MANAGEMENT: false }), { namespaceId: ns, repositoryId: repo }, [a]);
    await pushManifest(database.pool, config, { namespaceId: ns, repositoryId: repo }, [await createBlob(database.pool, 5)]);
    expect(await namespaceTotal(database.pool, ns)).toBeUndefined();
    expect(await repositoryTotal(database.pool, repo)).toBeUndefined();
  });
});

describe('dedup matrix (#12)', () => {
  let ns: number;
  let repoA: number;
  let repoB: number;
  let seed: Blob;
  beforeAll(async () => {
    ns = await createNamespace(database.pool, 'matrix');
    repoA = await createRepo(database.pool, ns, 'a');
    repoB = await createRepo(database.pool, ns, 'b');
    seed = await createBlob(database.pool, 7);
    await pushManifest(database.pool, config, { namespaceId: ns, repositoryId: repoA }, [seed]);
  });

  async function change(repositoryId: number, blobs: Blob[]): Promise<{ ns: number; repo: number }> {
    const before = { ns: (await namespaceTotal(database.pool, ns))!.size, repo: (await repositoryTotal(database.pool, repositoryId))?.size ?? 0 };
    await pushManifest(database.pool, config, { namespaceId: ns, repositoryId }, blobs);
    return { ns: (await namespaceTotal(database.pool, ns))!.size - before.ns, repo: (await repositoryTotal(database.pool, repositoryId))!.size - before.repo };
  }

  it('new blobs grow both levels by their sum', async () => {
    const [x, y] = [await createBlob(database.pool, 100), await createBlob(database.pool, 200)];
    expect(await change(repoA, [x, y])).toEqual({ ns: 300, repo: 300 });
  });

  it('blobs the namespace and repository hold already add nothing, listed twice or not', async () => {
    expect(await change(repoA, [seed, seed])).toEqual({ ns: 0, repo: 0 });
  });

  it('one new and one known blob add the new one', async () => {
    const z = await createBlob(database.pool, 50);
    expect(await change(repoA, [seed, z])).toEqual({ ns: 50, repo: 50 });
  });

  it('a blob the namespace holds but the repository does not grows the repository only', async () => {
    expect(await change(repoB, [seed])).toEqual({ ns: 0, repo: 7 });
    expect(await auditQuotaTotals(database.pool)).toEqual([]);
  });
});

describe('quota management off (#7)', () => {
  it('a push marks the namespace and its repositories stale, unless QUOTA_INVALIDATE_TOTALS is false', async () => {
    const ns = await createNamespace(database.pool, 'toggled');
    const repo = await createRepo(database.pool, ns, 'r');
    await pushManifest(database.pool, config, { namespaceId: ns, repositoryId: repo }, [await createBlob(database.pool, 40)]);
    const keep = quotaConfig({ FEATURE_QUOTA_MANAGEMENT: false, QUOTA_INVALIDATE_TOTALS: false });
    await pushManifest(database.pool, keep, { namespaceId: ns, repositoryId: repo }, [await createBlob(database.pool, 2)]);
    expect(await namespaceTotal(database.pool, ns)).toEqual({ size: 40, complete: true });
    const off = quotaConfig({ FEATURE_QUOTA_MANAGEMENT: false });
    await pushManifest(database.pool, off, { namespaceId: ns, repositoryId: repo }, [await createBlob(database.pool, 3)]);
    expect(await namespaceTotal(database.pool, ns)).toEqual({ size: 0, complete: false });
    expect(await repositoryTotal(database.pool, repo)).toEqual({ size: 0, complete: false });
    // Back on: the backfill recomputes everything, the pushes made while off included.
    expect(await backfillNamespace(database.pool, ns)).toBe('computed');
    expect(await namespaceTotal(database.pool, ns)).toEqual({ size: 45, complete: true });
  });
});

describe('concurrency Quay marks as expected failure', () => {
  it('concurrent pushes of one new blob into one namespace count it once per level', async () => {
    const ns = await createNamespace(database.pool, 'racers');
    const repos = await Promise.all([0, 1, 2, 3].map((i) => createRepo(database.pool, ns, `r${i}`)));
    await pushManifest(database.pool, config, { namespaceId: ns, repositoryId: repos[0]! }, [await createBlob(database.pool, 1)]);
    const shared = await createBlob(database.pool, 1_000_000);
    await Promise.all(repos.flatMap((repositoryId) => [0, 1, 2].map(() =>
      pushManifest(database.pool, config, { namespaceId: ns, repositoryId }, [shared]))));
    expect((await namespaceTotal(database.pool, ns))!.size).toBe(1 + 1_000_000);
    for (const repo of repos) expect((await repositoryTotal(database.pool, repo))!.size).toBe(repo === repos[0] ? 1_000_001 : 1_000_000);
    expect(await auditQuotaTotals(database.pool)).toEqual([]);
  });

  it('a backfill never misses a push that was linked but not committed when it started, nor counts one twice', async () => {
    for (const state of ['waiting', 'complete'] as const) {
      const ns = await createNamespace(database.pool, `handoff${state}`);
      const repositoryId = await createRepo(database.pool, ns, 'r');
      const off = quotaConfig({ FEATURE_QUOTA_MANAGEMENT: false });
      await pushManifest(database.pool, state === 'waiting' ? off : config, { namespaceId: ns, repositoryId }, [await createBlob(database.pool, 5)]);
      if (state === 'waiting') expect(await backfillNamespace(database.pool, ns)).toBe('computed');
      for (let round = 0; round < 5; round++) {
        if (state === 'waiting') await database.pool.query(`UPDATE quotanamespacesize SET backfill_complete = false, backfill_start_ms = NULL WHERE namespace_user_id = $1`, [ns]);
        const slow = pushManifest(database.pool, config, { namespaceId: ns, repositoryId }, [await createBlob(database.pool, 100 + round)], undefined, { holdMs: 150 });
        await new Promise((resolve) => setTimeout(resolve, 50));
        await Promise.all([slow, backfillNamespace(database.pool, ns, { force: true })]);
        expect(await auditQuotaTotals(database.pool)).toEqual([]);
        expect((await namespaceTotal(database.pool, ns))!.complete).toBe(true);
      }
    }
  });

  it('a backfill never counts what a GC transaction unlinked but had not committed when it started', async () => {
    const ns = await createNamespace(database.pool, 'gchandoff');
    const repositoryId = await createRepo(database.pool, ns, 'r');
    await pushManifest(database.pool, config, { namespaceId: ns, repositoryId }, [await createBlob(database.pool, 5)], 'keep');
    for (let round = 0; round < 5; round++) {
      const manifestId = await pushManifest(database.pool, config, { namespaceId: ns, repositoryId }, [await createBlob(database.pool, 100 + round)]);
      const slowGc = withTransaction(database.pool, async (tx) => {
        await deleteUnusedManifests(tx, { id: repositoryId, namespaceId: ns }, [manifestId], { counts: new GcTally() });
        await new Promise((resolve) => setTimeout(resolve, 150));
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      await Promise.all([slowGc, backfillNamespace(database.pool, ns, { force: true })]);
      expect(await auditQuotaTotals(database.pool)).toEqual([]);
    }
  });

  it('a push racing GC of the last manifest holding its blob never under-counts', async () => {
    const ns = await createNamespace(database.pool, 'pushgc');
    const repo = await createRepo(database.pool, ns, 'r');
    await pushManifest(database.pool, config, { namespaceId: ns, repositoryId: repo }, [await createBlob(database.pool, 3)], 'keep');
    for (let round = 0; round < 20; round++) {
      const blob = await createBlob(database.pool, 1000 + round);
      await pushManifest(database.pool, config, { namespaceId: ns, repositoryId: repo }, [blob], `old${round}`);
      await deleteTag(database.pool, repo, `old${round}`);
      await Promise.all([
        collect(database.pool, repo),
        pushManifest(database.pool, config, { namespaceId: ns, repositoryId: repo }, [blob], `new${round}`),
      ]);
      expect(await auditQuotaTotals(database.pool)).toEqual([]);
    }
  });
});
