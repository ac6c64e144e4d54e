/**
 * The whole worker table, loaded: name -> definition, for `quayfleet all` and the tests. A single
 * worker pod loads only its own through workers/catalog.ts.
 */
import { COMPANIONS, WORKER_NAMES, loadWorker, type FleetWorker } from './catalog.ts';

export type { FleetWorker } from './catalog.ts';

/** The worker table: name -> definition. */
export const WORKERS: Readonly<Record<string, FleetWorker>> = Object.fromEntries(
  await Promise.all(WORKER_NAMES.map(async (name) => [name, (await loadWorker(name))!] as const)),
);

/** The definitions `quayfleet worker <name>` runs: the worker and its companions. */
export function workersOfPod(name: string): FleetWorker[] {
  return [name, ...(COMPANIONS[name] ?? [])].map((n) => workerNamed(n)).filter((w): w is FleetWorker => w !== undefined);
}

/** The worker named `name`, or undefined. */
export function workerNamed(name: string): FleetWorker | undefined {
  return Object.hasOwn(WORKERS, name) ? WORKERS[name] : undefined;
}
