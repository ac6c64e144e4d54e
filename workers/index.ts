/**
 * Every worker type of the fleet, by the name `quayfleet worker <name>` takes. One entry per
 * folder under workers/; `quayfleet all` runs every one whose gate is on.
 */
import type { VersionedPayload } from '../queues/contract.ts';
import type { WorkerDefinition } from '../shared/runtime/worker.ts';
import type { FleetServices } from './services.ts';
import { gcworker } from './gcworker/index.ts';
import { namespacegcworker } from './namespacegcworker/index.ts';
import { notificationworker } from './notificationworker/index.ts';
import { repositorygcworker } from './repositorygcworker/index.ts';
import { securityscanningnotificationworker } from './securityscanningnotificationworker/index.ts';
import { quotaregistrysizeworker, quotatotalworker } from './quotatotalworker/index.ts';
import { exportactionlogsworker } from './exportactionlogsworker/index.ts';
import { logrotateworker } from './logrotateworker/index.ts';
import { repomirrorworker } from './repomirrorworker/index.ts';
import { storagereplicationworker } from './storagereplicationworker/index.ts';
import { blobuploadcleanupworker, chunkcleanupworker } from './chunkcleanupworker/index.ts';

/** A worker definition whose services the fleet process can provide. */
export type FleetWorker = WorkerDefinition<VersionedPayload, FleetServices, unknown>;

/**
 * Each definition asks for a subset of FleetServices and a narrower payload than VersionedPayload;
 * the runtime validates payloads with the definition's own contract, so widening here is safe.
 */
function fleetWorker<P extends VersionedPayload, S extends Partial<FleetServices>>(definition: WorkerDefinition<P, S & FleetServices, unknown>): FleetWorker {
  return definition as unknown as FleetWorker;
}

/** The worker table: name -> definition. */
export const WORKERS: Readonly<Record<string, FleetWorker>> = Object.fromEntries([
  fleetWorker(gcworker),
  fleetWorker(repositorygcworker),
  fleetWorker(namespacegcworker),
  fleetWorker(quotatotalworker),
  fleetWorker(quotaregistrysizeworker),
  fleetWorker(exportactionlogsworker),
  fleetWorker(logrotateworker),
  fleetWorker(notificationworker),
  fleetWorker(repomirrorworker),
  fleetWorker(storagereplicationworker),
  fleetWorker(chunkcleanupworker),
  fleetWorker(blobuploadcleanupworker),
  fleetWorker(securityscanningnotificationworker),
].map((definition) => [definition.name, definition]));

/**
 * Workers that run in the pod of another (`quayfleet worker <pod>`), where one deployment serves
 * two queues: the `chunkcleanupworker` pod consumes `chunk_cleanup` and `blobuploadcleanup`, the
 * `quotatotalworker` pod `quotatotal` and `quotaregistrysize` (as its Deployment says).
 */
const COMPANIONS: Readonly<Record<string, readonly string[]>> = {
  chunkcleanupworker: ['blobuploadcleanupworker'],
  quotatotalworker: ['quotaregistrysizeworker'],
};

/** The definitions `quayfleet worker <name>` runs: the worker and its companions. */
export function workersOfPod(name: string): FleetWorker[] {
  return [name, ...(COMPANIONS[name] ?? [])].map((n) => workerNamed(n)).filter((w): w is FleetWorker => w !== undefined);
}

/** The worker named `name`, or undefined. */
export function workerNamed(name: string): FleetWorker | undefined {
  return Object.hasOwn(WORKERS, name) ? WORKERS[name] : undefined;
}
