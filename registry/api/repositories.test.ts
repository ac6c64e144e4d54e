import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findRepository, RepositoryState } from '../../shared/db/repositories.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const PASSWORD = 'a long enough password';
let t: TestRegistry;
const alice: [string, string] = ['alice', PASSWORD];
const bob: [string, string] = ['bob', PASSWORD];

beforeAll(async () => {
  t = await startTestRegistry({ label: 'apirepos' });
  await t.createUser('alice', PASSWORD);
  await t.createUser('bob', PASSWORD);
  await t.createOrganization('acme', 'alice');
});
afterAll(async () => t?.close());

function expectQuayError(response: { statusCode: number; json(): Record<string, unknown> }, status: number, message?: string | RegExp): void {
  expect(response.statusCode).toBe(status);
  const body = response.json();
  expect(body).toMatchObject({ status, error_type: expect.any(String), error_message: expect.any(String), detail: expect.anything() });
  if (message) expect(body.error_message).toMatch(message);
}

describe('POST /api/v1/repository', () => {
  it('creates a repository in the caller namespace and an org it administers', async () => {
    const mine = await t.api('POST', '/repository', { as: alice, body: { repository: 'web', visibility: 'private', description: 'site' } });
    expect(mine.statusCode).toBe(201);
    expect(mine.json()).toEqual({ namespace: 'alice', name: 'web', kind: 'image' });
    const org = await t.api('POST', '/repository', { as: alice, body: { namespace: 'acme', repository: 'api', visibility: 'public', description: '' } });
    expect(org.json()).toEqual({ namespace: 'acme', name: 'api', kind: 'image' });
    const { rows } = await t.db.query(`SELECT kind, metadata_json FROM logentry WHERE kind = 'create_repo' ORDER BY id`);
    expect(rows.map((r) => r.metadata_json)).toEqual([{ repo: 'web', namespace: 'alice' }, { repo: 'api', namespace: 'acme' }]);
  });

  it('refuses bad input with Quay errors, never 500', async () => {
    expectQuayError(await t.api('POST', '/repository', { as: alice, body: '{not json' }), 400);
    expectQuayError(await t.api('POST', '/repository', { as: alice, body: { visibility: 'private' } }), 400, /repository/);
    expectQuayError(await t.api('POST', '/repository', { as: alice, body: { repository: 42, visibility: 'private' } }), 400);
    expectQuayError(await t.api('POST', '/repository', { as: alice, body: { repository: 'x', visibility: 'secret' } }), 400, /visibility/);
    expectQuayError(await t.api('POST', '/repository', { as: alice, body: { repository: 'Bad Name', visibility: 'private' } }), 400, 'Invalid repository name');
    expectQuayError(await t.api('POST', '/repository', { as: alice, body: { repository: 'web', visibility: 'private' } }), 400, 'Repository already exists');
    expectQuayError(await t.api('POST', '/repository', { as: alice, body: [] }), 400);
  });

  it('refuses callers who may not create there', async () => {
    expectQuayError(await t.api('POST', '/repository', { body: { repository: 'x', visibility: 'private' } }), 401);
    expectQuayError(await t.api('POST', '/repository', { as: bob, body: { namespace: 'acme', repository: 'x', visibility: 'private' } }), 403);
    expectQuayError(await t.api('POST', '/repository', { as: bob, body: { namespace: 'nowhere', repository: 'x', visibility: 'private' } }), 403);
    expectQuayError(await t.api('POST', '/repository', { as: ['bob', 'wrong password'], body: { repository: 'x', visibility: 'private' } }), 401);
  });
});

describe('GET /api/v1/repository and /repository/{ns}/{repo}', () => {
  it('lists what the caller may see, with Quay fields', async () => {
    const response = await t.api('GET', '/repository?namespace=acme', { as: alice });
    expect(response.json()).toEqual({ repositories: [{ namespace: 'acme', name: 'api', description: '', is_public: true, kind: 'image', state: 'NORMAL', is_starred: false }] });
    const bobs = await t.api('GET', '/repository?public=true&last_modified=true', { as: bob });
    expect(bobs.json().repositories.map((r: { name: string }) => r.name)).toEqual(['api']);
    expect(bobs.json().repositories[0]).toHaveProperty('last_modified', null);
    expect((await t.api('GET', '/repository?namespace=alice', { as: bob })).json()).toEqual({ repositories: [] });
  });

  it('requires a filter and a valid page token', async () => {
    expectQuayError(await t.api('GET', '/repository', { as: alice }), 400, 'You must specify either starred=true, a namespace or public=true');
    expectQuayError(await t.api('GET', '/repository?namespace=alice&next_page=garbage', { as: alice }), 400, 'Invalid next_page token');
  });

  it('pages with next_page', async () => {
    for (let i = 0; i < 101; i++) await t.createRepository(`acme/bulk${String(i).padStart(3, '0')}`);
    const first = await t.api('GET', '/repository?namespace=acme', { as: alice });
    expect(first.json().repositories).toHaveLength(100);
    const second = await t.api('GET', `/repository?namespace=acme&next_page=${first.json().next_page}`, { as: alice });
    expect(second.json().repositories).toHaveLength(2);
    expect(second.json().next_page).toBeUndefined();
  });

  it('gets one repository, hiding private ones from others', async () => {
    const response = await t.api('GET', '/repository/alice/web', { as: alice });
    expect(response.json()).toMatchObject({ namespace: 'alice', name: 'web', is_public: false, can_admin: true, can_write: true, tags: {}, tag_expiration_s: 1209600 });
    expectQuayError(await t.api('GET', '/repository/alice/web', { as: bob }), 403);
    expectQuayError(await t.api('GET', '/repository/alice/web'), 401);
    expectQuayError(await t.api('GET', '/repository/alice/missing', { as: alice }), 404);
  });
});

describe('visibility and delete', () => {
  it('changes visibility for admins only, with a log entry', async () => {
    expectQuayError(await t.api('POST', '/repository/alice/web/changevisibility', { as: bob, body: { visibility: 'public' } }), 403);
    expectQuayError(await t.api('POST', '/repository/alice/web/changevisibility', { as: alice, body: { visibility: 'open' } }), 400);
    const response = await t.api('POST', '/repository/alice/web/changevisibility', { as: alice, body: { visibility: 'public' } });
    expect(response.json()).toEqual({ success: true });
    expect((await findRepository(t.db, 'alice', 'web'))?.visibility).toBe('public');
    const { rows } = await t.db.query(`SELECT metadata_json FROM logentry WHERE kind = 'change_repo_visibility'`);
    expect(rows[0].metadata_json).toEqual({ repo: 'web', namespace: 'alice', visibility: 'public' });
  });

  it('marks a repository for deletion in one transaction: rename, state, marker, log, outbox', async () => {
    const before = (await findRepository(t.db, 'alice', 'web'))!;
    expectQuayError(await t.api('DELETE', '/repository/alice/web', { as: bob }), 403);
    const response = await t.api('DELETE', '/repository/alice/web', { as: alice });
    expect(response.statusCode).toBe(204);
    const { rows: [repo] } = await t.db.query(`SELECT name, state FROM repository WHERE id = $1`, [before.id]);
    expect(repo.state).toBe(RepositoryState.MARKED_FOR_DELETION);
    expect(repo.name).toMatch(/^[0-9a-f-]{36}$/);
    const { rows: [marker] } = await t.db.query(`SELECT id, original_name, queue_id FROM deletedrepository WHERE repository_id = $1`, [before.id]);
    expect(marker).toMatchObject({ original_name: 'web', queue_id: `repositorygc/${before.id}` });
    const { rows: outbox } = await t.db.query(`SELECT queue_name, job_id, payload FROM outbox WHERE queue_name = 'repositorygc'`);
    expect(outbox).toEqual([{ queue_name: 'repositorygc', job_id: `repositorygc/${before.id}`, payload: { v: 1, repositoryId: before.id, markerId: marker.id, originalName: 'web', namespace: 'alice' } }]);
    const { rows: logs } = await t.db.query(`SELECT metadata_json FROM logentry WHERE kind = 'delete_repo' AND repository_id = $1`, [before.id]);
    expect(logs).toHaveLength(1);
    // The name is free at once; the old repository is invisible.
    expectQuayError(await t.api('GET', '/repository/alice/web', { as: alice }), 404);
    expect((await t.api('POST', '/repository', { as: alice, body: { repository: 'web', visibility: 'private' } })).statusCode).toBe(201);
  });

  it('writes nothing when any step fails (the transaction rolls back)', async () => {
    const repo = (await findRepository(t.db, 'acme', 'api'))!;
    // A marker row left over for this repository makes the marker insert fail mid-transaction.
    await t.db.query(`INSERT INTO deletedrepository (repository_id, original_name) VALUES ($1, 'stale')`, [repo.id]);
    const response = await t.api('DELETE', '/repository/acme/api', { as: alice });
    expect(response.statusCode).toBe(500);
    const { rows: [after] } = await t.db.query(`SELECT name, state FROM repository WHERE id = $1`, [repo.id]);
    expect(after).toEqual({ name: 'api', state: RepositoryState.NORMAL });
    const { rowCount } = await t.db.query(`SELECT 1 FROM outbox WHERE job_id = $1`, [`repositorygc/${repo.id}`]);
    expect(rowCount).toBe(0);
    await t.db.query(`DELETE FROM deletedrepository WHERE repository_id = $1`, [repo.id]);
  });
});
