/**
 * What every /v2 route shares, built once when the routes are registered: the app's dependencies,
 * the artifact policy compiled from config, the running upload hashes of this process, and the
 * storage location ids (rows created on first use, so the app builds without touching the database).
 */
import { ensureLocations } from '../../shared/db/blobs.ts';
import { nowMs } from '../auth/credentials.ts';
import type { RegistryDeps } from '../deps.ts';
import { artifactPolicy, type ArtifactPolicy } from '../manifests/policy.ts';
import { PullLogBuffer } from './pull-logs.ts';
import { UploadHashes } from './uploads/hashes.ts';

/** Storage location names and their `imagestoragelocation` ids. */
export interface Locations {
  /** The id of a configured location. */
  idOf(name: string): number;
  /** The name of location `id`, or undefined for a location this process does not configure. */
  nameOf(id: number): string | undefined;
}

/** The shared state of the /v2 routes. */
export interface V2Context {
  readonly deps: RegistryDeps;
  readonly policy: ArtifactPolicy;
  readonly hashes: UploadHashes;
  /** Batches `pull_repo` logs off the request path (flushed on close). */
  readonly pullLogs: PullLogBuffer;
  /** Wall clock in ms (the injectable clock of the deps). */
  now(): number;
  /** The location ids, loaded (and created) once. */
  locations(): Promise<Locations>;
}

/** Builds the context of the /v2 routes. */
export function createV2Context(deps: RegistryDeps): V2Context {
  let loading: Promise<Locations> | undefined;
  const locations = (): Promise<Locations> => {
    loading ??= loadLocations(deps).catch((error: unknown) => {
      loading = undefined; // retried by the next request
      throw error;
    });
    return loading;
  };
  return {
    deps, policy: artifactPolicy(deps.config.quay), hashes: new UploadHashes(), now: () => nowMs(deps), locations,
    pullLogs: new PullLogBuffer(deps.db, deps.config.quay, deps.log),
  };
}

async function loadLocations(deps: RegistryDeps): Promise<Locations> {
  const ids = await ensureLocations(deps.db, deps.storage.locations);
  const names = new Map([...ids].map(([name, id]) => [id, name]));
  return {
    idOf: (name) => {
      const id = ids.get(name);
      if (id === undefined) throw new Error(`storage location "${name}" has no imagestoragelocation row`);
      return id;
    },
    nameOf: (id) => names.get(id),
  };
}
