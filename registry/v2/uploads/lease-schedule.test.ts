/**
 * Upload leases expiring within one second share one `garbagecollection` job (its dedupe id
 * carries the second), so that job must run at the END of the second, as the tag path's does: run
 * at the first lease's exact expiry, it found the others still live and left them to the sweep.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRepositoryGc } from '../../../shared/db/gc/run.ts';
import { startTestRegistry, type TestRegistry } from '../../../test/helpers/registry.ts';
import { V2Client } from '../test-support.ts';

let registry: TestRegistry;
let client: V2Client;
// A second boundary plus 50 ms, so twenty uploads 40 ms apart stay within one second.
let clock = (Math.floor(Date.now() / 1000) + 10) * 1000 + 50;

beforeAll(async () => {
  registry = await startTestRegistry({ label: 'leasesched', now: () => clock });
  await registry.createUser('alice', 'password1');
  client = new V2Client(registry.app, await registry.tokenFor('alice', 'password1', ['repository:alice/burst:pull,push']));
});
afterAll(async () => registry?.close());

describe('upload lease GC jobs', () => {
  it('runs the one job of a second of expiring leases at the end of that second, and it collects all of them', async () => {
    const uploads = 20;
    for (let i = 0; i < uploads; i++) {
      await client.uploadBlob('alice/burst', randomBytes(100 + i), i % 2 === 0 ? 'monolithic' : 'patch');
      clock += 40;
    }
    const { rows: leases } = await registry.db.query<{ expires_at: Date; repository_id: number }>(`SELECT expires_at, repository_id FROM uploadedblob`);
    expect(leases).toHaveLength(uploads);
    const lastExpiry = Math.max(...leases.map((l) => l.expires_at.getTime()));
    const { rows: jobs } = await registry.db.query<{ job_id: string; run_at: Date }>(
      `SELECT job_id, run_at FROM outbox WHERE queue_name = 'garbagecollection' AND payload->>'reason' = 'upload_lease' ORDER BY id`);
    expect(jobs).toHaveLength(uploads);
    expect(new Set(jobs.map((j) => j.job_id)).size).toBe(1);
    // The relay publishes rows in order and BullMQ keeps the first under the shared id.
    const runAt = jobs[0]!.run_at.getTime();
    expect(runAt % 1000).toBe(0);
    expect(runAt).toBeGreaterThanOrEqual(lastExpiry);
    expect(runAt - lastExpiry).toBeLessThan(1000);

    const outcome = await runRepositoryGc(registry.db, registry.deps.storage, leases[0]!.repository_id, { nowMs: runAt });
    expect(outcome.locked).toBe(true);
    const { rows: left } = await registry.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM uploadedblob`);
    expect(left[0]!.n).toBe(0);
    const { rows: blobs } = await registry.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM imagestorage`);
    expect(blobs[0]!.n).toBe(0);
  });
});
