/**
 * A superuser made by `quayfleet users create --superuser` (the database flag) has the same rights
 * as one listed in SUPER_USERS, on the Quay API and on /v2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setSuperuser } from '../../shared/db/namespaces.ts';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

describe('database superuser flag', () => {
  let t: TestRegistry;
  beforeAll(async () => {
    t = await startTestRegistry({ label: 'superflag' });
    const root = await t.createUser('flagroot', 'rootpassword');
    await setSuperuser(t.db, root.id, true);
    await t.createUser('plainuser', 'plainpassword');
  });
  afterAll(async () => { await t.close(); });

  it('grants superuser API routes to the flagged user only', async () => {
    expect((await t.api('POST', '/superuser/users/', { as: ['plainuser', 'plainpassword'], body: { username: 'made1' } })).statusCode).toBe(403);
    expect((await t.api('POST', '/superuser/users/', { as: ['flagroot', 'rootpassword'], body: { username: "made1" } })).statusCode).toBe(200);
  });

  it("grants push to another user's private repository on /v2", async () => {
    await t.createRepository('plainuser/private');
    const token = await t.tokenFor('flagroot', 'rootpassword', ['repository:plainuser/private:pull,push']);
    const response = await t.app.inject({ method: 'POST', url: '/v2/plainuser/private/blobs/uploads/', headers: { authorization: `Bearer ${token}` } });
    expect(response.statusCode).toBe(202);
  });
});
