/**
 * Invariant 3 under concurrency, through the real front end: actors push images over /v2 (shared
 * and fresh layers, moving tags, pushes by digest), delete tags and repositories over the Quay
 * API, run GC and repository purges, and force backfills, all at once in two namespaces. After
 * every round and at the end, every total and reference count equals a from-scratch
 * recomputation. QUOTA_RANDOM_SEED reproduces a run.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageManifest, V2Client } from '../../registry/v2/test-support.ts';
import { runRepositoryGc, runRepositoryPurge } from '../../shared/db/gc/run.ts';
import { auditQuotaTotals } from '../../shared/db/quota/audit.ts';
import { backfillNamespace } from '../../shared/db/quota/backfill.ts';
import { random as prng } from '../gc/scenario.ts';
import type { TestRegistry } from '../helpers/registry.ts';
import { createOrg, OWNER, startQuotaRegistry } from './push-support.ts';

const SEED = Number(process.env.QUOTA_RANDOM_SEED ?? Math.floor(Math.random() * 1e9));
const ROUNDS = 3;
const ACTORS = 4;
const OPERATIONS = 20;
const REPOSITORIES = ['rand/a', 'rand/b', 'rand/c', 'other/a', 'other/b'];

let registry: TestRegistry;
const namespaces: Record<string, number> = {};
const LAYERS = Array.from({ length: 12 }, (_, i) => randomBytes(500 + i * 700));
const CONFIGS = Array.from({ length: 3 }, (_, i) => Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: i })));
const tally = { pushed: 0, refusedOrRaced: 0, tagsDeleted: 0, repositoriesDeleted: 0, collected: 0, backfills: 0, tokenRetries: 0 };

beforeAll(async () => {
  registry = await startQuotaRegistry('quotarandom');
  for (const org of ['rand', 'other']) namespaces[org] = await createOrg(registry, org);
});
afterAll(async () => {
  await registry?.close();
});

async function repositoryId(name: string): Promise<number | undefined> {
  const [ns, repo] = name.split('/');
  const { rows } = await registry.db.query<{ id: number }>(
    `SELECT r.id FROM repository r JOIN namespace n ON n.id = r.namespace_user_id WHERE n.username = $1 AND r.name = $2 AND r.state = 0`, [ns, repo]);
  return rows[0]?.id;
}

// Two first pushes racing to create one repository can get a 500 from /v2/auth today (createRepository
// queries inside the transaction its unique violation aborted): retried, and counted, not hidden.
async function tokenFor(name: string): Promise<string> {
  try {
    return await registry.tokenFor(OWNER[0], OWNER[1], [`repository:${name}:push,pull`]);
  } catch {
    tally.tokenRetries++;
    return registry.tokenFor(OWNER[0], OWNER[1], [`repository:${name}:push,pull`]);
  }
}

async function push(random: () => number, name: string): Promise<void> {
  const token = await tokenFor(name);
  const client = new V2Client(registry.app, token);
  const layers = LAYERS.filter(() => random() < 0.25);
  if (random() < 0.3) layers.push(randomBytes(300 + Math.floor(random() * 3000)));
  const config = CONFIGS[Math.floor(random() * CONFIGS.length)]!;
  try {
    for (const blob of [config, ...layers]) await client.uploadBlob(name, blob, random() < 0.5 ? 'monolithic' : 'patch');
    const manifest = imageManifest(config, layers);
    const reference = random() < 0.15 ? manifest.digest : `t${Math.floor(random() * 4)}`;
    const response = await client.putManifest(name, manifest, reference);
    if (response.statusCode === 201) tally.pushed++;
    else tally.refusedOrRaced++;
  } catch {
    tally.refusedOrRaced++; // the repository was deleted under the push: allowed, it must just leave totals exact
  }
}

async function operate(random: () => number): Promise<void> {
  const name = REPOSITORIES[Math.floor(random() * REPOSITORIES.length)]!;
  const roll = random();
  if (roll < 0.5) return push(random, name);
  if (roll < 0.7) {
    const response = await registry.api('DELETE', `/repository/${name}/tag/t${Math.floor(random() * 4)}`, { as: OWNER });
    if (response.statusCode === 204) tally.tagsDeleted++;
    return;
  }
  const id = await repositoryId(name);
  if (id === undefined) return;
  if (roll < 0.75) {
    if ((await registry.api('DELETE', `/repository/${name}`, { as: OWNER })).statusCode === 204) tally.repositoriesDeleted++;
    await runRepositoryPurge(registry.db, registry.deps.storage, id);
    return;
  }
  if (roll < 0.95) {
    await runRepositoryGc(registry.db, registry.deps.storage, id);
    tally.collected++;
    return;
  }
  await backfillNamespace(registry.db, namespaces[name.split('/')[0]!]!, { force: true });
  tally.backfills++;
}

describe('random concurrent pushes, deletes, GC and backfills', () => {
  it(`keep every total equal to a recomputation (seed ${SEED})`, async () => {
    const random = prng(SEED);
    for (let round = 0; round < ROUNDS; round++) {
      const seeds = Array.from({ length: ACTORS }, () => Math.floor(random() * 2 ** 31));
      await Promise.all(seeds.map(async (actorSeed) => {
        const actorRandom = prng(actorSeed);
        for (let i = 0; i < OPERATIONS; i++) await operate(actorRandom);
      }));
      expect(await auditQuotaTotals(registry.db)).toEqual([]);
    }
    // Everything collected: whatever is left is still exact, and the namespaces' totals complete.
    for (const name of REPOSITORIES) {
      const id = await repositoryId(name);
      if (id !== undefined) await runRepositoryGc(registry.db, registry.deps.storage, id);
    }
    expect(await auditQuotaTotals(registry.db)).toEqual([]);
    const { rows } = await registry.db.query<{ complete: boolean }>(
      `SELECT backfill_complete AS complete FROM quotanamespacesize WHERE namespace_user_id = ANY($1::bigint[])`, [Object.values(namespaces)]);
    expect(rows.map((r) => r.complete)).toEqual([true, true]);
    expect(tally.pushed).toBeGreaterThan(10);
    console.log(`quota random run, seed ${SEED}: ${JSON.stringify(tally)}`);
  }, 300_000);
});
