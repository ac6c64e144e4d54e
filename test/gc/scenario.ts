/**
 * A random but reproducible registry for GC tests and checks: namespaces with different time
 * machines, repositories sharing blobs across repositories and namespaces, manifest lists,
 * referrers, labels, tags alive / ended inside and outside the window / hidden, live and expired
 * leases, already-orphaned blobs.
 */
import { blob, label, lease, manifest, namespace, repository, tag, type GcFixture, type TestBlob, type TestManifest } from './fixtures.ts';

/** A deterministic generator (mulberry32), so a failing seed can be replayed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What `buildScenario` made. */
export interface Scenario {
  readonly namespaces: { id: number; name: string; repositories: number[] }[];
  readonly nowMs: number;
}

/** Builds `namespaces` namespaces of `repositories` repositories each, seeded by `seed`. */
export async function buildScenario(f: GcFixture, options: { seed: number; prefix: string; namespaces?: number; repositories?: number }): Promise<Scenario> {
  const rnd = random(options.seed);
  const pick = <T>(items: T[]): T => items[Math.floor(rnd() * items.length)]!;
  const nowMs = Date.now();
  const pool: TestBlob[] = [];
  for (let i = 0; i < 12; i++) pool.push(await blob(f));
  const namespaces: Scenario['namespaces'] = [];
  for (let n = 0; n < (options.namespaces ?? 3); n++) {
    const name = `${options.prefix}${n}`;
    const id = await namespace(f, name, pick([0, 60, 86_400]));
    const repositories: number[] = [];
    for (let r = 0; r < (options.repositories ?? 3); r++) {
      const repo = await repository(f, id, `r${r}`);
      repositories.push(repo);
      await fillRepository(f, repo, rnd, pool, nowMs);
    }
    namespaces.push({ id, name, repositories });
  }
  for (let i = 0; i < 2; i++) await blob(f); // orphaned already: no manifest, no lease
  return { namespaces, nowMs };
}

async function fillRepository(f: GcFixture, repo: number, rnd: () => number, shared: TestBlob[], nowMs: number): Promise<void> {
  const pick = <T>(items: T[]): T => items[Math.floor(rnd() * items.length)]!;
  const manifests: TestManifest[] = [];
  const sharedLabel = await label(f);
  for (let i = 0; i < 6; i++) {
    const blobs = [await blob(f), pick(shared), ...(rnd() < 0.5 ? [pick(shared)] : [])];
    manifests.push(await manifest(f, repo, { blobs: [...new Set(blobs)], labels: rnd() < 0.5 ? [sharedLabel] : [await label(f)] }));
  }
  const index = await manifest(f, repo, { children: [manifests[0]!, manifests[1]!] });
  const referrer = await manifest(f, repo, { blobs: [await blob(f)], subject: manifests[2]!.digest });
  const tagged = [index, referrer, ...manifests.slice(2)];
  for (const [i, m] of tagged.entries()) {
    const state = pick(['alive', 'ended-now', 'ended-long-ago', 'hidden-expired', 'hidden-live']);
    const endMs = { alive: null, 'ended-now': nowMs - 1000, 'ended-long-ago': nowMs - 100_000_000, 'hidden-expired': nowMs - 100_000_000, 'hidden-live': nowMs + 3_600_000 }[state];
    await tag(f, repo, `t${i}`, m, { startMs: nowMs - 200_000_000, endMs, hidden: state.startsWith('hidden') });
  }
  // Leases: one live on a private blob, one expired on a private blob, one expired on a shared blob.
  await lease(f, repo, await blob(f), new Date(nowMs + 3_600_000));
  await lease(f, repo, await blob(f), new Date(nowMs - 1000));
  await lease(f, repo, pick(shared), new Date(nowMs - 1000));
}
