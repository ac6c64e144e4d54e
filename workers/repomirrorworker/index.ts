/** The repomirrorworker: repository mirroring on the `repomirror` queue, plus its scheduler tick. */
import { repomirror, type RepoMirrorPayload } from '../../queues/repomirror.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { Semaphore } from './copy.ts';
import { repoMirrorHandler, type RepoMirrorServices } from './handler.ts';
import type { SyncSettings } from './sync.ts';

/** The engine's defaults: a 2 min lease renewed every 40 s, 8 transfers per sync and 16 per process, 8 tags copied ahead. */
export const DEFAULT_SYNC_SETTINGS: Omit<SyncSettings, 'perWorker'> & { perWorkerLimit: number } = {
  leaseMs: 120_000, blobsPerSync: 8, perWorkerLimit: 16, tagsAhead: 8, idleTimeoutMs: 60_000,
};

/** A repomirrorworker declaration with `overrides` of the engine's settings (tests shorten the lease). */
export function createRepoMirrorWorker(overrides: Partial<typeof DEFAULT_SYNC_SETTINGS> & Partial<SyncSettings> = {}) {
  const { perWorkerLimit, ...rest } = { ...DEFAULT_SYNC_SETTINGS, ...overrides };
  const settings: SyncSettings = { ...rest, perWorker: overrides.perWorker ?? new Semaphore(perWorkerLimit) };
  return defineWorker<RepoMirrorPayload, RepoMirrorServices>({
    name: 'repomirrorworker',
    queue: repomirror,
    // Syncs of different repositories run in parallel (MIRROR-20); tags of one repository in order.
    concurrency: 4,
    schedule: (config) => [{
      id: 'repomirror-tick', everySeconds: Math.max(1, config.quay.REPO_MIRROR_INTERVAL), payload: { v: 1, trigger: 'schedule' },
    }],
    gate: (config) => (config.quay.FEATURE_REPO_MIRROR
      ? { enabled: true, reason: 'FEATURE_REPO_MIRROR is true' }
      : { enabled: false, reason: 'FEATURE_REPO_MIRROR is false: repositories are not mirrored' }),
    handler: repoMirrorHandler(settings),
  });
}

/** The worker declaration (listed in workers/index.ts). */
export const repomirrorworker = createRepoMirrorWorker();

export default repomirrorworker;
