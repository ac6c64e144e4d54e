/**
 * GC-17's pruning mode against real Postgres and storage (LocalStorage and Ceph RadosGW): under
 * managementState Removed or Unmanaged a GC run deletes rows only and leaves every object; under
 * Managed it deletes both; objects left by metadata-only runs are deleted once the registry is
 * Managed again. The dry run and the metric name the mode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presentDryRun, dryRun } from '../../shared/db/gc/dry-run.ts';
import { setPruningMode } from '../../shared/db/gc/metrics.ts';
import { drainPendingDeletions } from '../../shared/db/gc/pending-deletions.ts';
import { runRepositoryGc, runSweep } from '../../shared/db/gc/run.ts';
import { GcTally } from '../../shared/db/gc/tally.ts';
import { parseConfig } from '../../shared/config/index.ts';
import { registry } from '../../shared/metrics/index.ts';
import { gateOf } from '../../shared/runtime/worker.ts';
import { exportManagementState } from '../../shared/runtime/management-state.ts';
import { gcworker } from '../../workers/gcworker/index.ts';
import { RADOSGW } from '../servers/storage-endpoints.ts';
import {
  blob, blobRowExists, count, createGcFixture, endTag, manifest, manifestExists, namespace, objectExists, repository, tag, type GcFixture, type TestBlob,
} from './fixtures.ts';

const RGW: [string, Record<string, unknown>] = ['RadosGWStorage', {
  hostname: RADOSGW.host, port: String(RADOSGW.port), is_secure: false, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey,
  bucket_name: RADOSGW.bucket, storage_path: `/pruning-mode-${process.pid}`,
}];
let f: GcFixture;
beforeAll(async () => { f = await createGcFixture('gcpruning', ['local_us', 'rgw'], { rgw: RGW }); });
afterAll(async () => { await f?.close(); });

let seq = 0;
/** A repository whose only tag ended: one manifest and two blobs (in both locations) are garbage. */
async function garbage(): Promise<{ id: number; blobs: TestBlob[]; m: Awaited<ReturnType<typeof manifest>> }> {
  const ns = await namespace(f, `prune${++seq}`);
  const id = await repository(f, ns, 'repo');
  const blobs = [await blob(f, { locations: ['local_us', 'rgw'] }), await blob(f, { locations: ['local_us', 'rgw'] })];
  const m = await manifest(f, id, { blobs });
  await tag(f, id, 'latest', m);
  await endTag(f, id, 'latest');
  return { id, blobs, m };
}

async function gc(repositoryId: number, pruneBlobs: boolean): Promise<GcTally> {
  const tally = new GcTally();
  const outcome = await runRepositoryGc(f.pool, f.storage, repositoryId, { nowMs: Date.now() + 1000, listener: tally, pruneBlobs });
  if (!outcome.locked) throw new Error('repository lock busy');
  return tally;
}

const objectsOf = async (blobs: TestBlob[]) => Promise.all(blobs.flatMap((b) => ['local_us', 'rgw'].map((l) => objectExists(f, b.digest, l))));

describe('GC pruning mode (GC-17)', () => {
  it('metadata only (Removed, Unmanaged): every row goes, every object stays, in every location', async () => {
    const { id, blobs, m } = await garbage();
    const tally = await gc(id, false);
    expect(await manifestExists(f, m)).toBe(false);
    for (const b of blobs) expect(await blobRowExists(f, b)).toBe(false);
    expect(Object.fromEntries(tally.rows)).toMatchObject({ Tag: 1, Manifest: 1, ImageStorage: 2, ImageStoragePlacement: 4 });
    expect(await objectsOf(blobs)).toEqual([true, true, true, true]);
    expect(tally.objects).toBe(0);
    // The objects' deletions are recorded, not done: a sweep in the same mode leaves them too.
    expect(await count(f, 'pendingstoragedeletion', 'content_checksum = ANY($1)', [blobs.map((b) => b.digest)])).toBe(4);
    await runSweep(f.pool, f.storage, { tick: 0, pruneBlobs: false });
    expect(await objectsOf(blobs)).toEqual([true, true, true, true]);
  });

  it('metadata and blobs (Managed): rows and objects go; objects a metadata-only run left are deleted once Managed again', async () => {
    const kept = await garbage();
    await gc(kept.id, false);
    const { id, blobs, m } = await garbage();
    const tally = await gc(id, true);
    expect(await manifestExists(f, m)).toBe(false);
    expect(await objectsOf(blobs)).toEqual([false, false, false, false]);
    expect(tally.objects).toBe(4);
    expect(await objectsOf(kept.blobs)).toEqual([true, true, true, true]);
    // What the Managed sweep does with records older than a minute.
    await drainPendingDeletions(f.pool, f.storage, {});
    expect(await objectsOf(kept.blobs)).toEqual([false, false, false, false]);
    expect(await count(f, 'pendingstoragedeletion')).toBe(0);
  });

  it('the mode follows managementState, and the dry run, the GC metric and the workers say so', async () => {
    const settings = (managementState: string) => parseConfig({ spec: { managementState } }).imageRegistry;
    expect(presentDryRun(await dryRun(f.pool, {}), 0, settings('Removed'))).toMatchObject({ pruningMode: 'metadata_only', managementState: 'Removed' });
    expect(presentDryRun(await dryRun(f.pool, {}), 0, settings('Unmanaged'))).toMatchObject({ pruningMode: 'metadata_only', managementState: 'Unmanaged' });
    expect(presentDryRun(await dryRun(f.pool, {}), 0, settings('Managed'))).toMatchObject({ pruningMode: 'metadata_and_blobs', managementState: 'Managed' });

    setPruningMode(false);
    exportManagementState(settings('Removed'));
    const text = await registry.metrics();
    expect(text).toMatch(/^quayfleet_gc_pruning_mode\{[^}]*mode="metadata_only"[^}]*\} 1$/m);
    expect(text).toMatch(/^quayfleet_gc_pruning_mode\{[^}]*mode="metadata_and_blobs"[^}]*\} 0$/m);
    expect(text).toContain('quayfleet_image_registry_condition{condition="ImageRegistryRemoved",message="Image Registry has been removed. ImageStreamTags, BuildConfigs and DeploymentConfigs which reference ImageStreamTags may not work as expected. Please configure storage and update the config to Managed state by editing configs.imageregistry.operator.openshift.io."} 1');
    expect(text).toMatch(/^quayfleet_management_state\{state="Removed"\} 1$/m);

    // Removed stops every worker but the GC ones (which prune metadata only).
    const removed = parseConfig({ spec: { managementState: 'Removed' } });
    expect(gateOf(gcworker, removed)).toMatchObject({ enabled: true });
    expect(gateOf({ gate: () => ({ enabled: true, reason: 'on' }) }, removed)).toEqual({
      enabled: false, reason: 'managementState is Removed: the image registry is removed and only garbage collection of metadata runs',
    });
    expect(gateOf({ gate: () => ({ enabled: true, reason: 'on' }) }, parseConfig({ spec: { managementState: 'Unmanaged' } }))).toEqual({ enabled: true, reason: 'on' });
  });
});
