/**
 * Repository and namespace purges (reference §6.3 #13/#25-27, §6.5): everything goes except what
 * other repositories use, names stay reserved until the end, one purge per target at a time, and
 * a purge SIGKILLed mid-way completes when run again.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrganizationAccount, createRobotAccount, createUserAccount } from '../../shared/db/accounts.ts';
import { markNamespaceForDeletion, markRepositoryForDeletion } from '../../shared/db/deletion-markers.ts';
import { auditStorage } from '../../shared/db/gc/audit.ts';
import { withGcLock } from '../../shared/db/gc/locks.ts';
import { runNamespacePurge, runRepositoryPurge } from '../../shared/db/gc/run.ts';
import { GcTally } from '../../shared/db/gc/tally.ts';
import { createNamespace, getNamespaceById, NamespaceExistsError } from '../../shared/db/namespaces.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { getRepositoryById } from '../../shared/db/repositories.ts';
import { addTeamMember, upsertTeam } from '../../shared/db/teams.ts';
import { uploadKey } from '../../shared/storage/keys.ts';
import { buildModel, insertModelRows, writeModelObjects } from './bulk.ts';
import {
  blob, blobRowExists, count, createGcFixture, label, lease, manifest, objectExists, repository, tag, type GcFixture,
} from './fixtures.ts';

let f: GcFixture;
beforeAll(async () => { f = await createGcFixture('gcpurge'); });
afterAll(async () => { await f.close(); });

let seq = 0;
async function organization(): Promise<{ id: number; name: string }> {
  const owner = `owner${++seq}`;
  const name = `org${seq}`;
  const org = await withTransaction(f.pool, async (tx) => {
    await createUserAccount(tx, { username: owner, password: 'password123' });
    return createOrganizationAccount(tx, { name, owner });
  });
  return { id: org.id, name };
}

async function markRepository(id: number): Promise<void> {
  await withTransaction(f.pool, async (tx) => markRepositoryForDeletion(tx, (await getRepositoryById(tx, id))!, { performerId: null }));
}

async function markNamespace(id: number): Promise<void> {
  await withTransaction(f.pool, async (tx) => markNamespaceForDeletion(tx, (await getNamespaceById(tx, id))!, { performerId: null }));
}

/** Fills repository `id` with everything a purge must remove; returns the blob shared with `other`. */
async function fill(id: number, other: number) {
  const now = Date.now();
  const shared = await blob(f);
  const unique = await Promise.all([blob(f), blob(f), blob(f), blob(f), blob(f)]);
  const children = [await manifest(f, id, { blobs: [unique[0]!] }), await manifest(f, id, { blobs: [unique[1]!] })];
  const index = await manifest(f, id, { children });
  const m1 = await manifest(f, id, { blobs: [unique[2]!, shared], labels: [await label(f)] });
  await manifest(f, id, { blobs: [unique[3]!] }); // never tagged (PROJQUAY-8136)
  const referrer = await manifest(f, id, { subject: m1.digest });
  await tag(f, id, 'latest', m1);
  await tag(f, id, 'old', index, { endMs: now - 1000 });
  await tag(f, id, '$temp-ref', referrer, { hidden: true });
  await lease(f, id, unique[4]!, new Date(now + 3_600_000));
  await tag(f, other, `keep${++seq}`, await manifest(f, other, { blobs: [shared] }));
  // An upload in progress: a multipart write with one part, and a staged tail object.
  const uuid = crypto.randomUUID();
  const store = f.storage.preferredStore();
  const writer = await store.createMultipart(uploadKey(uuid));
  await writer.writePart(1, Buffer.from('part one'), 8);
  await store.put(`uploads/${uuid}.tail`, Buffer.from('tail'));
  await f.pool.query(
    `INSERT INTO blobupload (repository_id, uuid, location_id, storage_metadata) VALUES ($1, $2, $3, $4)`,
    [id, uuid, f.locationIds.get('local_us'), JSON.stringify({ uploadId: writer.uploadId, parts: 1, tail: { key: `uploads/${uuid}.tail`, bytes: 4 } })]);
  await f.pool.query(`INSERT INTO repositorynotification (repository_id, event, method) VALUES ($1, 'repo_push', 'webhook')`, [id]);
  const rule = await f.pool.query<{ id: number }>(`INSERT INTO repomirrorrule (repository_id, rule_value) VALUES ($1, '["*"]') RETURNING id`, [id]);
  await f.pool.query(`INSERT INTO repomirrorconfig (repository_id, external_reference, sync_interval, root_rule_id) VALUES ($1, 'quay.io/x/y', 60, $2)`, [id, rule.rows[0]!.id]);
  await f.pool.query(`INSERT INTO quotarepositorysize (repository_id, size_bytes) VALUES ($1, 100)`, [id]);
  return { shared, unique, uuid };
}

const REPOSITORY_TABLES = ['tag', 'manifest', 'manifestblob', 'manifestchild', 'manifestlabel', 'uploadedblob', 'blobupload',
  'repositorypermission', 'repositorynotification', 'repomirrorconfig', 'repomirrorrule', 'quotarepositorysize', 'deletedrepository'];

async function leftovers(repositoryId: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of REPOSITORY_TABLES) {
    const n = await count(f, table, 'repository_id = $1', [repositoryId]);
    if (n > 0) out[table] = n;
  }
  return out;
}

describe('repository purge', () => {
  it('deletes everything the repository owns, keeps what another repository uses, and is done once', async () => {
    const org = await organization();
    const id = await repository(f, org.id, 'doomed');
    const other = await repository(f, org.id, 'other');
    const { shared, unique, uuid } = await fill(id, other);
    await markRepository(id);
    const tally = new GcTally();
    const outcome = await runRepositoryPurge(f.pool, f.storage, id, { listener: tally });
    expect(outcome).toMatchObject({ locked: true, value: { purge: { done: true } } });
    expect(await leftovers(id)).toEqual({});
    expect(await count(f, 'repository', 'id = $1', [id])).toBe(0);
    expect(tally.repositories).toBe(1);
    expect(await blobRowExists(f, shared)).toBe(true);
    expect(await objectExists(f, shared.digest)).toBe(true);
    for (const b of unique) expect(await objectExists(f, b.digest)).toBe(false);
    const store = f.storage.preferredStore();
    expect(await store.exists(`uploads/${uuid}.tail`)).toBe(false);
    const open = [];
    for await (const upload of store.listMultipartUploads('uploads/')) open.push(upload);
    expect(open.filter((u) => u.key === uploadKey(uuid))).toEqual([]);
    expect(await runRepositoryPurge(f.pool, f.storage, id)).toMatchObject({ locked: true, value: { purge: { done: true } } });
    expect((await auditStorage(f.pool, f.storage, f.storage.locations)).storageConsistent).toBe(true);
  });

  it('never runs twice at once for one repository', async () => {
    const org = await organization();
    const id = await repository(f, org.id, 'busy');
    await markRepository(id);
    await withGcLock(f.pool, { repositoryId: id }, async () => {
      expect(await runRepositoryPurge(f.pool, f.storage, id)).toEqual({ locked: false });
    });
    expect(await runRepositoryPurge(f.pool, f.storage, id)).toMatchObject({ locked: true, value: { purge: { done: true } } });
  });
});

describe('namespace purge', () => {
  it('purges every repository and the namespace, keeping the name reserved until done', async () => {
    const org = await organization();
    const keeper = await organization();
    const keep = await repository(f, keeper.id, 'keep');
    const repos = [await repository(f, org.id, 'a'), await repository(f, org.id, 'b')];
    const contents = [await fill(repos[0]!, keep), await fill(repos[1]!, keep)];
    await withTransaction(f.pool, async (tx) => {
      const row = (await getNamespaceById(tx, org.id))!;
      await createRobotAccount(tx, { namespace: row, shortname: 'bot' });
      const { team } = await upsertTeam(tx, { organizationId: org.id, name: 'devs', role: 'member', description: '' });
      await addTeamMember(tx, team.id, (await createUserAccount(tx, { username: `member${seq}`, password: 'password123' })).id);
      await tx.query(`INSERT INTO namespacenotification (namespace_id, event, method) VALUES ($1, 'quota_warning', 'email')`, [org.id]);
      await tx.query(`INSERT INTO quotanamespacesize (namespace_user_id, size_bytes) VALUES ($1, 5)`, [org.id]);
    });
    await markNamespace(org.id);
    await expect(createNamespace(f.pool, { username: org.name, kind: 'organization' })).rejects.toThrow(NamespaceExistsError);

    const tally = new GcTally();
    const outcome = await runNamespacePurge(f.pool, f.storage, org.id, { listener: tally });
    expect(outcome).toMatchObject({ locked: true, value: { purge: { done: true } } });
    expect(tally).toMatchObject({ namespaces: 1, repositories: 2 });
    expect(await count(f, 'namespace', 'id = $1', [org.id])).toBe(0);
    expect(await count(f, 'namespace', `robot AND username LIKE '%+bot'`)).toBe(0);
    for (const id of repos) expect(await leftovers(id)).toEqual({});
    for (const c of contents) expect(await objectExists(f, c.shared.digest)).toBe(true);
    expect(await count(f, 'team', 'organization_id = $1', [org.id])).toBe(0);
    await createNamespace(f.pool, { username: org.name, kind: 'organization' });
  });

  it('waits for a repository another job holds, and finishes afterwards', async () => {
    const org = await organization();
    const id = await repository(f, org.id, 'held');
    await markNamespace(org.id);
    await withGcLock(f.pool, { repositoryId: id }, async () => {
      expect(await runNamespacePurge(f.pool, f.storage, org.id)).toMatchObject({ locked: true, value: { purge: { done: false } } });
      expect(await runNamespacePurge(f.pool, f.storage, org.id, {})).toMatchObject({ locked: true });
    });
    expect(await runNamespacePurge(f.pool, f.storage, org.id)).toMatchObject({ locked: true, value: { purge: { done: true } } });
    expect(await count(f, 'deletednamespace', 'namespace_id = $1', [org.id])).toBe(0);
  });
});

describe('purge interrupted by SIGKILL', () => {
  /** Runs purge-child.ts and SIGKILLs it once it reported `afterRows` deleted rows. */
  async function killMidway(kind: 'repository' | 'namespace', id: number, afterRows: number): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/gc/purge-child.ts', f.database.url, JSON.stringify(f.storageConfig), kind, String(id), '10'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let deleted = 0;
    let finished = false;
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        for (const line of text.split('\n')) {
          const match = /^progress \S+ (\d+)/.exec(line);
          if (match) deleted += Number(match[1]);
          if (line.startsWith('done')) finished = true;
        }
        if (deleted >= afterRows && child.exitCode === null) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
      child.on('error', reject);
    });
    expect(finished).toBe(false);
    expect(deleted).toBeGreaterThanOrEqual(afterRows);
  }

  it.each(['repository', 'namespace'] as const)('completes a %s purge when run again', async (kind) => {
    const model = buildModel({ namespaces: 1, repositories: 2, manifests: 600, blobsPerManifest: 2, garbageFraction: 0, prefix: `kill${kind}` });
    await writeModelObjects(model, f.storage.preferredStore());
    const [first, second] = await insertModelRows(f.pool, model, { locationId: f.locationIds.get('local_us')!, nowMs: Date.now(), windowS: 0 });
    const namespaceId = (await getRepositoryById(f.pool, first!))!.namespace_user_id;
    if (kind === 'repository') await markRepository(first!);
    else await markNamespace(namespaceId);
    await killMidway(kind, kind === 'repository' ? first! : namespaceId, 300);
    expect(await count(f, 'repository', 'id = $1', [first])).toBe(1);

    const run = kind === 'repository' ? runRepositoryPurge : runNamespacePurge;
    // The killed process's session lock goes with its connection, but only once its backend notices
    // the client is gone (a statement in flight, such as a batch DELETE, runs to its end first): the
    // next run may find it held for a moment, as the next scheduled run would in production.
    let outcome = await run(f.pool, f.storage, kind === 'repository' ? first! : namespaceId);
    for (const deadline = Date.now() + 30_000; !outcome.locked && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      outcome = await run(f.pool, f.storage, kind === 'repository' ? first! : namespaceId);
    }
    expect(outcome).toMatchObject({ locked: true, value: { purge: { done: true } } });
    expect(await leftovers(first!)).toEqual({});
    if (kind === 'namespace') expect(await leftovers(second!)).toEqual({});
    else expect(await count(f, 'manifest', 'repository_id = $1', [second])).toBe(300);
    const audit = await auditStorage(f.pool, f.storage, f.storage.locations);
    expect(audit.storageConsistent).toBe(true);
  }, 120_000);
});
