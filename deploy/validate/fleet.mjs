// The facts the deployment files must agree with, read from the code rather than written down
// twice: every worker pod type (workers/catalog.ts, the source of truth), the queues each pod
// consumes, whether its feature gate is on for a given config.yaml, and the config parser itself.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';

/**
 * @typedef {object} Pod
 * @property {string} name        `quayfleet worker <name>`
 * @property {string[]} queues    the queues its process consumes (its companions' included)
 * @property {(config: unknown) => boolean} enabled  whether `worker <name>` runs under `config` (false: it exits 0)
 */

/** Loads the fleet from the sources under `root`. */
export async function loadFleet(root) {
  const load = (file) => tsImport(pathToFileURL(path.join(root, file)).href, import.meta.url);
  const catalog = await load('workers/catalog.ts');
  const { gateOf } = await load('shared/runtime/worker.ts');
  const { parseConfig, ConfigError } = await load('shared/config/index.ts');
  const companions = new Set(Object.values(catalog.COMPANIONS).flat());
  /** @type {Pod[]} */
  const pods = [];
  for (const name of catalog.WORKER_NAMES.filter((n) => !companions.has(n))) {
    const definitions = await catalog.loadPod(name);
    const main = definitions.find((d) => d.name === name);
    pods.push({
      name,
      queues: definitions.map((d) => d.queue.name),
      enabled: (config) => gateOf(main, config)?.enabled ?? true,
    });
  }
  /** config.yaml text + pod environment -> the parsed Config, or the list of its errors. */
  const parse = (raw, env) => {
    try {
      return { config: parseConfig(raw, env) };
    } catch (error) {
      if (error instanceof ConfigError) return { errors: error.issues.map((i) => `${i.key}: ${i.message}`) };
      throw error;
    }
  };
  return { pods, parse };
}
