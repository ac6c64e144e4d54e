/**
 * Every worker type of the fleet, by the name `quayfleet worker <name>` takes. One entry per
 * folder under workers/; `quayfleet all` runs every one whose gate is on.
 */
import type { VersionedPayload } from '../queues/contract.ts';
import type { WorkerDefinition } from '../shared/runtime/worker.ts';
import type { FleetServices } from './services.ts';

/** A worker definition whose services the fleet process can provide. */
export type FleetWorker = WorkerDefinition<VersionedPayload, FleetServices, unknown>;

/** The worker table: name -> definition. */
export const WORKERS: Readonly<Record<string, FleetWorker>> = {};

/** The worker named `name`, or undefined. */
export function workerNamed(name: string): FleetWorker | undefined {
  return Object.hasOwn(WORKERS, name) ? WORKERS[name] : undefined;
}
