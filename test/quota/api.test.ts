/**
 * The quota API's shapes (seed QAPI-1..6, GAP-8) and its answers to bad input and to callers
 * without the right (Quay's 400/401/403/404; never a 500).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestRegistry } from '../helpers/registry.ts';
import { ADMIN, createOrg, OWNER, startQuotaRegistry } from './push-support.ts';

let registry: TestRegistry;
const MEMBER: [string, string] = ['member', 'memberpass1'];
const STRANGER: [string, string] = ['stranger', 'strangerpass'];

beforeAll(async () => {
  registry = await startQuotaRegistry('quotaapi');
  await registry.createUser(...MEMBER);
  await registry.createUser(...STRANGER);
  await createOrg(registry, 'testorg');
  await registry.createTeam('testorg', 'readers', 'member', [MEMBER[0]]);
});
afterAll(async () => {
  await registry?.close();
});

function errorOf(response: { statusCode: number; json(): unknown }): { status: number; message: string } {
  const body = response.json() as { error_message: string };
  return { status: response.statusCode, message: body.error_message };
}

describe('Quay\'s shapes', () => {
  let quotaId = 0;
  it('lists nothing before a quota exists (QAPI-1) and "Created" after one is made (QAPI-2, -3)', async () => {
    expect((await registry.api('GET', '/organization/testorg/quota', { as: OWNER })).json()).toEqual([]);
    const created = await registry.api('POST', '/organization/testorg/quota', { as: ADMIN, body: { limit_bytes: 10485760 } });
    expect(created.statusCode).toBe(201);
    expect(created.body).toBe('"Created"');
    const listed = (await registry.api('GET', '/organization/testorg/quota', { as: MEMBER })).json() as { id: number }[];
    expect(listed).toEqual([{ id: expect.any(Number), limit_bytes: 10485760, default_config: false, limits: [], default_config_exists: false }]);
    quotaId = listed[0]!.id;
  });

  it('changes the size (QAPI-4)', async () => {
    const changed = await registry.api('PUT', `/organization/testorg/quota/${quotaId}`, { as: ADMIN, body: { limit_bytes: 104857600 } });
    expect(changed.json()).toEqual({ id: quotaId, limit_bytes: 104857600, default_config: false, limits: [], default_config_exists: false });
  });

  it('takes threshold_percent and answers limit_percent (QAPI-5, -6, GAP-8)', async () => {
    for (const body of [{ type: 'Reject', threshold_percent: 80 }, { type: 'Warning', threshold_percent: 50 }]) {
      const created = await registry.api('POST', `/organization/testorg/quota/${quotaId}/limit`, { as: ADMIN, body });
      expect([created.statusCode, created.body]).toEqual([201, '"Created"']);
    }
    const listed = (await registry.api('GET', '/organization/testorg/quota', { as: OWNER })).json() as { limits: { id: number }[] }[];
    expect(listed[0]!.limits).toEqual([
      { id: expect.any(Number), type: 'Warning', limit_percent: 50 },
      { id: expect.any(Number), type: 'Reject', limit_percent: 80 },
    ]);
    const warning = listed[0]!.limits[0]!.id;
    const one = await registry.api('GET', `/organization/testorg/quota/${quotaId}/limit/${warning}`, { as: MEMBER });
    expect(one.json()).toEqual({ id: warning, type: 'Warning', limit_percent: 50 });
    const changed = await registry.api('PUT', `/organization/testorg/quota/${quotaId}/limit/${warning}`, { as: ADMIN, body: { threshold_percent: 70 } });
    expect((changed.json() as { limits: unknown[] }).limits).toContainEqual({ id: warning, type: 'Warning', limit_percent: 70 });
    expect((await registry.api('DELETE', `/organization/testorg/quota/${quotaId}/limit/${warning}`, { as: ADMIN })).statusCode).toBe(204);
    expect(((await registry.api('GET', `/organization/testorg/quota/${quotaId}/limit`, { as: OWNER })).json() as unknown[]).length).toBe(1);
  });

  it('reports the organization as "Backfill Queued" until its totals exist', async () => {
    const org = (await registry.api('GET', '/organization/testorg', { as: OWNER })).json() as { quota_report: unknown };
    expect(org.quota_report).toEqual({ quota_bytes: 0, configured_quota: 104857600, running_backfill: 'waiting', backfill_status: 'waiting' });
  });
});

describe('bad input answers Quay\'s errors', () => {
  let quotaId = 0;
  beforeAll(async () => {
    await createOrg(registry, 'badinput');
    await registry.api('POST', '/organization/badinput/quota', { as: ADMIN, body: { limit_bytes: 1000 } });
    quotaId = ((await registry.api('GET', '/organization/badinput/quota', { as: ADMIN })).json() as { id: number }[])[0]!.id;
  });

  it.each([
    [{ limit_bytes: -5 }, "Invalid quota size limit value: '-5'"],
    [{ limit_bytes: 0 }, "Invalid quota size limit value: '0'"],
    [{ limit_bytes: 'ten' }, '"ten" is not of type \'integer\''],
    [{ limit_bytes: 1.5 }, '1.5 is not of type \'integer\''],
    ['{"limit_bytes": 9223372036854775808}', 'Unsupported quota size limit.'],
    ['{"limit_bytes": 1e30}', 'Unsupported quota size limit.'],
    ['{"limit_bytes": ', 'Invalid JSON body'],
    ['[1, 2]', 'Invalid request: the body must be a JSON object'],
  ])('PUT %j -> 400 %s', async (body, message) => {
    const response = await registry.api('PUT', `/organization/badinput/quota/${quotaId}`, { as: ADMIN, body });
    expect(errorOf(response)).toEqual({ status: 400, message });
  });

  it('keeps the largest bigint exactly (QUOTA-11: 8388608 TB)', async () => {
    const response = await registry.api('PUT', `/organization/badinput/quota/${quotaId}`, { as: ADMIN, body: '{"limit_bytes": 9223372036854775807}' });
    expect(response.statusCode).toBe(200);
    const { rows } = await registry.db.query<{ limit: string }>(`SELECT limit_bytes::text AS limit FROM userorganizationquota WHERE id = $1`, [quotaId]);
    expect(rows[0]!.limit).toBe('9223372036854775807');
  });

  it.each([
    [{ type: 'Reject', threshold_percent: 0 }, 'Quota limit threshold must be between 1 and 100'],
    [{ type: 'Reject', threshold_percent: 101 }, 'Quota limit threshold must be between 1 and 100'],
    [{ type: 'Reject', threshold_percent: 'high' }, '"high" is not of type \'integer\''],
    [{ type: 'Panic', threshold_percent: 50 }, 'Quota type must be one of [Warning, Reject]'],
    [{ threshold_percent: 50 }, "'type' is a required property"],
  ])('POST limit %j -> 400 %s', async (body, message) => {
    const response = await registry.api('POST', `/organization/badinput/quota/${quotaId}/limit`, { as: ADMIN, body });
    expect(errorOf(response)).toEqual({ status: 400, message });
  });

  it('requires limit_bytes when creating (a PUT without it changes nothing)', async () => {
    expect(errorOf(await registry.api('POST', '/organization/badinput/quota', { as: ADMIN, body: {} })))
      .toEqual({ status: 400, message: "'limit_bytes' is a required property" });
    expect((await registry.api('PUT', `/organization/badinput/quota/${quotaId}`, { as: ADMIN, body: {} })).statusCode).toBe(200);
  });

  it('refuses a second quota, a duplicate limit and a second Reject limit', async () => {
    expect(errorOf(await registry.api('POST', '/organization/badinput/quota', { as: ADMIN, body: { limit_bytes: 5 } })))
      .toEqual({ status: 400, message: "Organization quota for 'badinput' already exists" });
    const limit = (body: unknown) => registry.api('POST', `/organization/badinput/quota/${quotaId}/limit`, { as: ADMIN, body });
    expect((await limit({ type: 'reject', threshold_percent: 90 })).statusCode).toBe(201);
    expect(errorOf(await limit({ type: 'Reject', threshold_percent: 90 }))).toEqual({ status: 400, message: 'Quota limit already exists' });
    expect(errorOf(await limit({ type: 'Reject', threshold_percent: 95 }))).toEqual({ status: 400, message: "Only one quota limit of type 'Reject' allowed." });
  });

  it('answers 404 for unknown namespaces, quotas and limits, and for ids that cannot exist', async () => {
    for (const path of [
      '/organization/nosuchorg/quota', `/organization/badinput/quota/${quotaId + 1000}`, '/organization/badinput/quota/abc',
      `/organization/badinput/quota/${quotaId}/limit/99999`, '/organization/badinput/quota/99999999999999999999999',
      '/superuser/users/nosuchuser/quota',
    ]) {
      expect([path, (await registry.api('GET', path, { as: ADMIN })).statusCode]).toEqual([path, 404]);
    }
    // A name no namespace can have: the input guard refuses the NUL before any route runs.
    expect((await registry.api('GET', '/organization/bad%00name/quota', { as: ADMIN })).statusCode).toBe(400);
  });
});

describe('who may do what', () => {
  it('401 without credentials, 403 "Unauthorized" for non-members and non-superusers', async () => {
    expect((await registry.api('GET', '/organization/testorg/quota')).statusCode).toBe(401);
    expect(errorOf(await registry.api('GET', '/organization/testorg/quota', { as: STRANGER }))).toEqual({ status: 403, message: 'Unauthorized' });
    // An organization that does not exist looks the same to a stranger.
    expect((await registry.api('GET', '/organization/nosuchorg/quota', { as: STRANGER })).statusCode).toBe(403);
    // Creating, changing and deleting quotas needs a superuser (QUOTA-20), even for the organization's owner.
    expect((await registry.api('POST', '/organization/testorg/quota', { as: OWNER, body: { limit_bytes: 5 } })).statusCode).toBe(403);
    const quotaId = ((await registry.api('GET', '/organization/testorg/quota', { as: OWNER })).json() as { id: number }[])[0]!.id;
    expect((await registry.api('PUT', `/organization/testorg/quota/${quotaId}`, { as: OWNER, body: { limit_bytes: 5 } })).statusCode).toBe(403);
    expect((await registry.api('DELETE', `/organization/testorg/quota/${quotaId}`, { as: MEMBER })).statusCode).toBe(403);
    for (const [method, path] of [['GET', `/superuser/users/${OWNER[0]}/quota`], ['POST', `/superuser/users/${OWNER[0]}/quota`], ['GET', '/superuser/registrysize/'], ['POST', '/superuser/registrysize/']] as const) {
      expect([path, (await registry.api(method, path, { as: OWNER, body: { limit_bytes: 5 } })).statusCode]).toEqual([path, 403]);
    }
  });

  it('lets superusers manage user quotas and the user read them; organization admins create only when the default is 0', async () => {
    expect((await registry.api('POST', `/superuser/users/${MEMBER[0]}/quota`, { as: ADMIN, body: { limit_bytes: 2048 } })).statusCode).toBe(201);
    expect(errorOf(await registry.api('POST', `/superuser/users/${MEMBER[0]}/quota`, { as: ADMIN, body: { limit_bytes: 2048 } })))
      .toEqual({ status: 400, message: `Quota for '${MEMBER[0]}' already exists` });
    const [own] = (await registry.api('GET', '/user/quota', { as: MEMBER })).json() as { id: number }[];
    expect((await registry.api('GET', `/user/quota/${own!.id}`, { as: MEMBER })).json()).toMatchObject({ limit_bytes: 2048 });
    expect((await registry.api('GET', `/user/quota/${own!.id}`, { as: STRANGER })).statusCode).toBe(404);
    expect((await registry.api('PUT', `/superuser/organization/${MEMBER[0]}/quota/${own!.id}`, { as: ADMIN, body: { limit_bytes: 4096 } })).json())
      .toMatchObject({ limit_bytes: 4096 });
    expect((await registry.api('DELETE', `/superuser/users/${MEMBER[0]}/quota/${own!.id}`, { as: ADMIN })).statusCode).toBe(204);
    expect((await registry.api('GET', '/user/quota', { as: MEMBER })).json()).toEqual([]);

    const zeroDefault = await startQuotaRegistry('quotaapizero', { DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: 0 });
    try {
      await createOrg(zeroDefault, 'own');
      expect((await zeroDefault.api('POST', '/organization/own/quota', { as: OWNER, body: { limit_bytes: 5 } })).statusCode).toBe(201);
    } finally {
      await zeroDefault.close();
    }
  });
});

describe('registry total (QUOTA-23)', () => {
  it('reports "never" before the first run, queues with 201, answers 202 while queued', async () => {
    expect((await registry.api('GET', '/superuser/registrysize/', { as: ADMIN })).json()).toEqual({ size_bytes: 0, last_ran: null, queued: false, running: false });
    expect((await registry.api('POST', '/superuser/registrysize/', { as: ADMIN })).statusCode).toBe(201);
    expect((await registry.api('POST', '/superuser/registrysize', { as: ADMIN })).statusCode).toBe(202);
    expect((await registry.api('GET', '/superuser/registrysize/', { as: ADMIN })).json()).toMatchObject({ queued: true, running: false });
    const { rows } = await registry.db.query(`SELECT job_id FROM outbox WHERE queue_name = 'quotaregistrysize'`);
    expect(rows.length).toBeGreaterThanOrEqual(1);
  });
});
