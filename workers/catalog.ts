/**
 * Every worker type of the fleet by the name `quayfleet worker <name>` takes, each loaded only when
 * asked for: a worker pod imports its own worker's module graph, not the thirteen others (their
 * SDKs, parsers and SQL), which keeps its start-up and idle memory down. workers/index.ts loads the
 * whole table for `quayfleet all` and the tests.
 */
import type { VersionedPayload } from '../queues/contract.ts';
import type { WorkerDefinition } from '../shared/runtime/worker.ts';
import type { FleetServices } from './services.ts';

/** A worker definition whose services the fleet process can provide. */
export type FleetWorker = WorkerDefinition<VersionedPayload, FleetServices, unknown>;

/**
 * Each definition asks for a subset of FleetServices and a narrower payload than VersionedPayload;
 * the runtime validates payloads with the definition's own contract, so widening here is safe.
 */
function fleetWorker<P extends VersionedPayload, S extends Partial<FleetServices>>(definition: WorkerDefinition<P, S & FleetServices, unknown>): FleetWorker {
  return definition as unknown as FleetWorker;
}

/** name -> loader of its definition (one folder under workers/ per entry, companions share one). */
const LOADERS: Readonly<Record<string, () => Promise<FleetWorker>>> = {
  gcworker: async () => fleetWorker((await import('./gcworker/index.ts')).gcworker),
  repositorygcworker: async () => fleetWorker((await import('./repositorygcworker/index.ts')).repositorygcworker),
  namespacegcworker: async () => fleetWorker((await import('./namespacegcworker/index.ts')).namespacegcworker),
  quotatotalworker: async () => fleetWorker((await import('./quotatotalworker/index.ts')).quotatotalworker),
  quotaregistrysizeworker: async () => fleetWorker((await import('./quotatotalworker/index.ts')).quotaregistrysizeworker),
  exportactionlogsworker: async () => fleetWorker((await import('./exportactionlogsworker/index.ts')).exportactionlogsworker),
  logrotateworker: async () => fleetWorker((await import('./logrotateworker/index.ts')).logrotateworker),
  notificationworker: async () => fleetWorker((await import('./notificationworker/index.ts')).notificationworker),
  repomirrorworker: async () => fleetWorker((await import('./repomirrorworker/index.ts')).repomirrorworker),
  storagereplicationworker: async () => fleetWorker((await import('./storagereplicationworker/index.ts')).storagereplicationworker),
  chunkcleanupworker: async () => fleetWorker((await import('./chunkcleanupworker/index.ts')).chunkcleanupworker),
  blobuploadcleanupworker: async () => fleetWorker((await import('./chunkcleanupworker/index.ts')).blobuploadcleanupworker),
  securityscanningnotificationworker: async () => fleetWorker((await import('./securityscanningnotificationworker/index.ts')).securityscanningnotificationworker),
};

/** Every worker name, in the table's order. */
export const WORKER_NAMES: readonly string[] = Object.keys(LOADERS);

/**
 * Workers that run in the pod of another (`quayfleet worker <pod>`), where one deployment serves
 * two queues: the `chunkcleanupworker` pod consumes `chunk_cleanup` and `blobuploadcleanup`, the
 * `quotatotalworker` pod `quotatotal` and `quotaregistrysize` (as its Deployment says).
 */
export const COMPANIONS: Readonly<Record<string, readonly string[]>> = {
  chunkcleanupworker: ['blobuploadcleanupworker'],
  quotatotalworker: ['quotaregistrysizeworker'],
};

/** The worker named `name` (its module loaded now), or undefined for an unknown name. */
export async function loadWorker(name: string): Promise<FleetWorker | undefined> {
  return Object.hasOwn(LOADERS, name) ? LOADERS[name]!() : undefined;
}

/** The definitions `quayfleet worker <name>` runs: the worker and its companions. */
export async function loadPod(name: string): Promise<FleetWorker[]> {
  const loaded = await Promise.all([name, ...(COMPANIONS[name] ?? [])].map(loadWorker));
  return loaded.filter((w): w is FleetWorker => w !== undefined);
}
