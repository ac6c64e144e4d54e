/**
 * Quota tests through the real front end: a registry with quota management on, an organization
 * with a quota, pushes with the OCI client over `app.inject()` (registry/v2/test-support.ts), the
 * Quay API for quotas and tag deletes, and GC through the real collection code.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { V2Client } from '../../registry/v2/test-support.ts';
import { collectRepository } from '../../shared/db/gc/collect.ts';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.ts';

export const OWNER: [string, string] = ['owner', 'ownerpass1'];
export const ADMIN: [string, string] = ['root', 'rootpass12'];

/** A registry with quota management on, an owner, a superuser and organization `org`. */
export async function startQuotaRegistry(label: string, config: Record<string, unknown> = {}): Promise<TestRegistry> {
  const registry = await startTestRegistry({
    label, config: { FEATURE_QUOTA_MANAGEMENT: true, QUOTA_TOTAL_DELAY_SECONDS: 0, ...config },
  });
  await registry.createUser(...OWNER);
  await registry.createUser(ADMIN[0], ADMIN[1], { superuser: true });
  return registry;
}

/** Creates organization `org` owned by OWNER with no time machine (GC collects deleted tags at once). */
export async function createOrg(registry: TestRegistry, org: string): Promise<number> {
  const row = await registry.createOrganization(org, OWNER[0]);
  await registry.db.query(`UPDATE namespace SET removed_tag_expiration_s = 0 WHERE id = $1`, [row.id]);
  return row.id;
}

/** An OCI client with push and pull on `repositories`, as OWNER. */
export async function clientFor(registry: TestRegistry, repositories: string[]): Promise<V2Client> {
  const token = await registry.tokenFor(OWNER[0], OWNER[1], repositories.map((r) => `repository:${r}:push,pull`));
  return new V2Client(registry.app, token);
}

/** Random bytes of `size`: a layer or config nothing else shares. */
export function bytesOf(size: number): Buffer {
  return randomBytes(size);
}

/** Sets `org`'s quota to `limitBytes` with limits `[type, percent]` through the API (as the superuser). */
export async function setQuota(registry: TestRegistry, org: string, limitBytes: number, limits: [string, number][] = []): Promise<number> {
  expect((await registry.api('POST', `/organization/${org}/quota`, { as: ADMIN, body: { limit_bytes: limitBytes } })).statusCode).toBe(201);
  const listed = (await registry.api('GET', `/organization/${org}/quota`, { as: ADMIN })).json() as { id: number }[];
  const id = listed[0]!.id;
  for (const [type, percent] of limits) {
    const response = await registry.api('POST', `/organization/${org}/quota/${id}/limit`, { as: ADMIN, body: { type, threshold_percent: percent } });
    expect(response.statusCode).toBe(201);
  }
  return id;
}

/** The organization's `quota_report` from GET /organization/{org}. */
export async function orgReport(registry: TestRegistry, org: string): Promise<{ quota_bytes: number; configured_quota: number | null; backfill_status: string }> {
  const response = await registry.api('GET', `/organization/${org}`, { as: OWNER });
  expect(response.statusCode).toBe(200);
  return (response.json() as { quota_report: { quota_bytes: number; configured_quota: number | null; backfill_status: string } }).quota_report;
}

/** Deletes tag `tag` of `ns/repo` through the API (204). */
export async function deleteTag(registry: TestRegistry, repository: string, tag: string): Promise<void> {
  const response = await registry.api('DELETE', `/repository/${repository}/tag/${tag}`, { as: OWNER });
  expect(response.statusCode).toBe(204);
}

/**
 * Collects `ns/repo` as GC would two hours from now: tags ended before now are past the zero time
 * machine, and push-by-digest tags and upload leases (PUSH_TEMP_TAG_EXPIRATION_SEC, 1 h) expired.
 */
export async function collect(registry: TestRegistry, repository: string): Promise<void> {
  const [ns, ...rest] = repository.split('/');
  const { rows } = await registry.db.query<{ id: number }>(
    `SELECT r.id FROM repository r JOIN namespace n ON n.id = r.namespace_user_id WHERE n.username = $1 AND r.name = $2`, [ns, rest.join('/')]);
  await collectRepository(registry.db, rows[0]!.id, { nowMs: Date.now() + 2 * 3600_000 });
}

/** The exact body Quay answers a push refused for quota. */
export const QUOTA_DENIED = { errors: [{ code: 'DENIED', message: 'Quota has been exceeded on namespace', detail: {} }] };
