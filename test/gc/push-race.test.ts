/**
 * Invariant 1 under load, through the real front end: pushers upload and tag the same few blobs
 * over and over, delete most tags at once, while GC collects both repositories in a tight loop
 * with a 0 s time machine and short upload leases. Every push that succeeded must be pullable
 * (manifest and every blob, byte for byte) while its tag lives; the kept ones at the end; and
 * once GC settles, storage and database agree exactly.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { imageManifest, sha256, V2Client } from '../../registry/v2/test-support.ts';
import { auditStorage } from '../../shared/db/gc/audit.ts';
import { collectBlobs } from '../../shared/db/gc/collect.ts';
import { drainPendingDeletions } from '../../shared/db/gc/pending-deletions.ts';
import { runRepositoryGc } from '../../shared/db/gc/run.ts';
import { orphanBlobIds } from '../../shared/db/gc/sweep.ts';
import { resolveUploadIntents } from '../../shared/db/gc/upload-intents.ts';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.ts';

const REPOSITORIES = ['alice/a', 'alice/b'];
const DURATION_MS = Number(process.env.GC_RACE_MS ?? 15_000);

let registry: TestRegistry | undefined;
afterEach(async () => { await registry?.close(); registry = undefined; });

/** Blobs reused by every push, so digests are re-pushed while GC is deleting them. */
const LAYERS = Array.from({ length: 5 }, () => randomBytes(256));
/** Layers only pushes whose tag is deleted use: GC keeps deleting them while pushers re-push them. */
const VOLATILE = Array.from({ length: 3 }, () => randomBytes(256));
const CONFIGS = Array.from({ length: 2 }, (_, i) => Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: i })));

interface Pushed {
  readonly repository: string;
  readonly tag: string;
  readonly blobs: Buffer[];
}

async function pullable(client: V2Client, p: Pushed): Promise<string | undefined> {
  const manifest = await client.request('GET', `/v2/${p.repository}/manifests/${p.tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  if (manifest.statusCode !== 200) return `manifest ${p.repository}:${p.tag} answered ${manifest.statusCode}`;
  for (const bytes of p.blobs) {
    const digest = sha256(bytes);
    const blob = await client.request('GET', `/v2/${p.repository}/blobs/${digest}`);
    if (blob.statusCode !== 200 || !blob.rawPayload.equals(bytes)) return `blob ${digest} of ${p.repository}:${p.tag} answered ${blob.statusCode}`;
  }
  return undefined;
}

async function pusher(id: number, client: V2Client, deadline: number, stats: { ok: number; failed: number; kept: Pushed[]; broken: string[] }): Promise<void> {
  for (let n = 0; Date.now() < deadline; n++) {
    const repository = REPOSITORIES[(id + n) % REPOSITORIES.length]!;
    const config = CONFIGS[n % CONFIGS.length]!;
    const keep = n % 4 === 0;
    const layers = [...LAYERS.filter((_, i) => (i + n + id) % 2 === 0), ...(keep ? [] : [VOLATILE[n % VOLATILE.length]!])];
    const p: Pushed = { repository, tag: `w${id}-${n}`, blobs: [config, ...layers] };
    try {
      for (const bytes of p.blobs) await client.uploadBlob(repository, bytes, n % 3 === 0 ? 'monolithic' : 'patch');
      const response = await client.putManifest(repository, imageManifest(config, layers), p.tag);
      if (response.statusCode !== 201) throw new Error(`PUT manifest answered ${response.statusCode}`);
    } catch {
      stats.failed++; // a failed push is allowed (a blob vanished before its manifest); a broken one is not
      continue;
    }
    stats.ok++;
    const problem = await pullable(client, p);
    if (problem) stats.broken.push(`right after push: ${problem}`);
    if (keep) {
      stats.kept.push(p);
      continue;
    }
    const [ns, repo] = repository.split('/');
    const deleted = await registry!.api('DELETE', `/repository/${ns}/${repo}/tag/${p.tag}`, { as: ['alice', 'password123'] });
    if (deleted.statusCode !== 204) stats.broken.push(`delete ${p.tag} answered ${deleted.statusCode}`);
  }
}

/** What the collector saw: rounds, objects deleted, records dropped because a push re-created the digest, candidates a push held. */
interface Race { runs: number; deleted: number; reborn: number; busy: number }

async function collector(r: TestRegistry, repositoryIds: number[], deadline: number): Promise<Race> {
  const race: Race = { runs: 0, deleted: 0, reborn: 0, busy: 0 };
  // At least one round, however late it starts: the settle step relies on it.
  do {
    for (const id of repositoryIds) {
      const outcome = await runRepositoryGc(r.db, r.deps.storage, id);
      if (!outcome.locked) continue;
      race.deleted += outcome.value.drain.deleted;
      race.reborn += outcome.value.drain.kept;
      race.busy += outcome.value.collect.busy + outcome.value.drain.busy;
    }
    const swept = await collectBlobs(r.db, await orphanBlobIds(r.db, { afterId: 0, toId: Number.MAX_SAFE_INTEGER }, Date.now()));
    const drain = await drainPendingDeletions(r.db, r.deps.storage, { ids: swept.pendingIds });
    race.deleted += drain.deleted;
    race.reborn += drain.kept;
    race.busy += swept.busyIds.length + drain.busy;
    // The sweep also settles the commit intents of pushes that failed after moving their bytes.
    const intents = await resolveUploadIntents(r.db, r.deps.storage);
    race.deleted += intents.deleted;
    race.busy += intents.busy;
    race.runs++;
  } while (Date.now() < deadline);
  return race;
}

describe('push versus GC', () => {
  it.each([0, 1])('never loses a referenced blob (time machine 0 s, upload lease %i s)', async (leaseS) => {
    registry = await startTestRegistry({ label: `gcrace${leaseS}`, config: { PUSH_TEMP_TAG_EXPIRATION_SEC: leaseS } });
    const r = registry;
    await r.createUser('alice', 'password123');
    await r.db.query(`UPDATE namespace SET removed_tag_expiration_s = 0 WHERE username = 'alice'`);
    const repositoryIds = [];
    for (const name of REPOSITORIES) repositoryIds.push((await r.createRepository(name)).id);
    const token = await r.tokenFor('alice', 'password123', REPOSITORIES.map((name) => `repository:${name}:push,pull`));
    const client = new V2Client(r.app, token);
    // A 0 s lease protects nothing from GC (a manifest may still link its blob until GC removes it): with it,
    // seed each repository with kept images over the stable blobs (pushed with a minute's lease);
    // pushes with a volatile layer then fail cleanly while their uploads race GC's deletes.
    const quay = r.deps.config.quay as { PUSH_TEMP_TAG_EXPIRATION_SEC: number };
    quay.PUSH_TEMP_TAG_EXPIRATION_SEC = 60;
    const seeds = leaseS > 0 ? [] : REPOSITORIES.flatMap((repository) => CONFIGS.map((config, i) => ({ repository, tag: `seed${i}`, blobs: [config, ...LAYERS] })));
    for (const seed of seeds) await client.pushImage(seed.repository, seed.tag, seed.blobs[0]!, seed.blobs.slice(1));
    quay.PUSH_TEMP_TAG_EXPIRATION_SEC = leaseS;
    const stats = { ok: 0, failed: 0, kept: [] as Pushed[], broken: [] as string[] };
    const deadline = Date.now() + DURATION_MS;
    const [race] = await Promise.all([collector(r, repositoryIds, deadline), ...[0, 1, 2].map((id) => pusher(id, client, deadline, stats))]);

    for (const p of [...seeds, ...stats.kept]) {
      const problem = await pullable(client, p);
      if (problem) stats.broken.push(`at the end: ${problem}`);
    }
    expect(stats.broken).toEqual([]);
    expect(stats.ok).toBeGreaterThan(2);
    expect(race.runs).toBeGreaterThan(3);
    expect(race.deleted).toBeGreaterThan(0);

    // Settle: leases expire, then GC runs everywhere once more; storage must match exactly.
    await new Promise((resolve) => setTimeout(resolve, leaseS * 1000 + 1100));
    await collector(r, repositoryIds, Date.now() + 1);
    const audit = await auditStorage(r.db, r.deps.storage, r.deps.storage.locations);
    expect(audit.locations.flatMap((l) => [...l.missingObjects, ...l.orphanObjects])).toEqual([]);
    expect(audit, JSON.stringify({ ...audit, locations: undefined })).toMatchObject({ ok: true });
    console.log(`push-vs-GC lease ${leaseS}s: ${stats.ok} pushes ok, ${stats.failed} failed cleanly, ${stats.kept.length} kept; `
      + `GC ${race.runs} rounds, ${race.deleted} objects deleted, ${race.reborn} re-pushed digests kept, ${race.busy} candidates held by pushes`);
  }, DURATION_MS * 4 + 60_000);
});
