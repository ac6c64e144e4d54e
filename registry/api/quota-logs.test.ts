import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../../test/helpers/registry.ts';

const alice: [string, string] = ['alice', 'a long enough password'];
let t: TestRegistry;

beforeAll(async () => {
  t = await startTestRegistry({ label: 'quotalogs', config: { FEATURE_QUOTA_MANAGEMENT: true, DISABLED_FOR_AUDIT_LOGS: ['silent'] } });
  await t.createUser('alice', alice[1], { superuser: true });
  await t.createOrganization('acme', 'alice');
  await t.createOrganization('silent', 'alice');
});
afterAll(async () => t?.close());

async function logs(): Promise<{ kind: string; metadata_json: Record<string, unknown> }[]> {
  return (await t.db.query(`SELECT kind, metadata_json FROM logentry WHERE kind LIKE 'org_%quota%' ORDER BY id`)).rows;
}

describe('quota audit logs', () => {
  it("writes Quay's org_*_quota kinds with their metadata, and nothing for a DISABLED_FOR_AUDIT_LOGS namespace", async () => {
    expect((await t.api('POST', '/organization/acme/quota', { as: alice, body: { limit_bytes: 1073741824 } })).statusCode).toBe(201);
    const quotaId = (await t.api('GET', '/organization/acme/quota', { as: alice })).json()[0].id as number;
    expect((await t.api('PUT', `/organization/acme/quota/${quotaId}`, { as: alice, body: { limit_bytes: 5368709120 } })).statusCode).toBe(200);
    expect((await t.api('POST', `/organization/acme/quota/${quotaId}/limit`, { as: alice, body: { type: 'Warning', threshold_percent: 80 } })).statusCode).toBe(201);
    const limitId = (await t.api('GET', `/organization/acme/quota/${quotaId}/limit`, { as: alice })).json()[0].id as number;
    expect((await t.api('PUT', `/organization/acme/quota/${quotaId}/limit/${limitId}`, { as: alice, body: { threshold_percent: 90 } })).statusCode).toBe(200);
    expect((await t.api('DELETE', `/organization/acme/quota/${quotaId}/limit/${limitId}`, { as: alice })).statusCode).toBe(204);
    expect((await t.api('DELETE', `/organization/acme/quota/${quotaId}`, { as: alice })).statusCode).toBe(204);
    expect((await t.api('POST', '/organization/silent/quota', { as: alice, body: { limit_bytes: 1024 } })).statusCode).toBe(201);
    expect(await logs()).toEqual([
      { kind: 'org_create_quota', metadata_json: { namespace: 'acme', limit_bytes: 1073741824, limit: '1.0 GiB' } },
      { kind: 'org_change_quota', metadata_json: { namespace: 'acme', quota_id: quotaId, limit_bytes: 5368709120, limit: '5.0 GiB', previous_limit_bytes: 1073741824 } },
      { kind: 'org_create_quota_limit', metadata_json: { namespace: 'acme', quota_id: quotaId, type: 'Warning', threshold_percent: 80 } },
      { kind: 'org_change_quota_limit', metadata_json: {
        namespace: 'acme', quota_id: quotaId, limit_id: limitId, type: 'Warning', threshold_percent: 90, previous_type: 'Warning', previous_threshold_percent: 80,
      } },
      { kind: 'org_delete_quota_limit', metadata_json: { namespace: 'acme', quota_id: quotaId, limit_id: limitId, type: 'Warning', threshold_percent: 90 } },
      { kind: 'org_delete_quota', metadata_json: { namespace: 'acme', quota_id: quotaId, limit_bytes: 5368709120, limit: '5.0 GiB' } },
    ]);
  });
});
