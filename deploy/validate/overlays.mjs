// Checks of the rendered kustomizations (`kubectl kustomize`): the base and every overlay under
// deploy/overlays. Each function gets the rendered objects and reports problems through `problem`.
import { parse } from 'yaml';

const named = (objects, kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name);
const ofKind = (objects, kind) => objects.filter((o) => o.kind === kind);
const PAUSED = 'autoscaling.keda.sh/paused-replicas';

/** The KEDA query the base gives a worker consuming `queues` in namespace `ns`. */
export const backlogQuery = (ns, queues) =>
  `sum(max by (queue_name) (quay_queue_items_available_unlocked{namespace="${ns}",queue_name=~"${queues.join('|')}"}))`;

/** config.yaml out of the rendered Secret `quayfleet-config-<hash>`, and the pods' environment. */
export function podSettings(objects) {
  const secret = ofKind(objects, 'Secret').find((s) => s.metadata.name.startsWith('quayfleet-config'));
  const env = ofKind(objects, 'ConfigMap').find((c) => c.metadata.name.startsWith('quayfleet-env'));
  const text = secret?.data?.['config.yaml'] ? Buffer.from(secret.data['config.yaml'], 'base64').toString('utf8') : undefined;
  return { raw: text === undefined ? undefined : parse(text), env: env?.data ?? {} };
}

/**
 * What a rendering must hold whatever the overlay: every Deployment runs `registry`, `all` or
 * `worker <pod>` of a pod type that exists, and the config each pod mounts parses (with the pod's
 * environment: QUAY_DISTRIBUTED_STORAGE_PREFERENCE names a location, ...).
 */
export function checkCommon(where, objects, fleet, problem) {
  const pods = new Set(fleet.pods.map((p) => p.name));
  for (const d of ofKind(objects, 'Deployment')) {
    const args = d.spec.template.spec.containers[0]?.args ?? [];
    const ok = (args.length === 1 && ['registry', 'all'].includes(args[0])) || (args.length === 2 && args[0] === 'worker' && pods.has(args[1]));
    if (!ok) problem(`${where}: Deployment ${d.metadata.name} runs ${JSON.stringify(args)}, which is no command or no worker of workers/catalog.ts`);
  }
  // An overlay's own objects get no namespace from its base's `namespace:`.
  const ns = named(objects, 'ServiceAccount', 'quayfleet')?.metadata.namespace;
  for (const o of objects) {
    if (o.kind !== 'Namespace' && o.metadata.namespace !== ns) problem(`${where}: ${o.kind} ${o.metadata.name} is in namespace ${o.metadata.namespace ?? '(none)'}, not ${ns}`);
  }
  const { raw, env } = podSettings(objects);
  if (raw === undefined) {
    problem(`${where}: no quayfleet-config Secret with config.yaml`);
    return undefined;
  }
  const parsed = fleet.parse(raw, env);
  if (parsed.errors) problem(`${where}: config.yaml does not parse for its pods:\n  ${parsed.errors.join('\n  ')}`);
  return parsed.config;
}

/**
 * The base (and the overlays that keep KEDA): exactly one Deployment + ScaledObject per pod type,
 * no other worker Deployment, and a ScaledObject paused at 0 exactly when its worker's feature is
 * off in the config the pods mount (else the worker exits 0 and its Deployment crash-loops, or
 * an enabled worker never runs).
 */
export function checkKedaFleet(where, objects, fleet, config, problem) {
  const ns = named(objects, 'ServiceAccount', 'quayfleet')?.metadata.namespace;
  const expected = new Set(['quayfleet-registry', ...fleet.pods.map((p) => `quayfleet-${p.name}`)]);
  for (const d of ofKind(objects, 'Deployment')) if (!expected.has(d.metadata.name)) problem(`${where}: Deployment ${d.metadata.name} names no worker of workers/catalog.ts`);
  for (const so of ofKind(objects, 'ScaledObject')) if (!expected.has(so.metadata.name)) problem(`${where}: ScaledObject ${so.metadata.name} names no worker of workers/catalog.ts`);
  for (const pod of fleet.pods) {
    const name = `quayfleet-${pod.name}`;
    if (!named(objects, 'Deployment', name)) problem(`${where}: no Deployment ${name} (workers/catalog.ts has ${pod.name}): add deploy/kubernetes/workers/${pod.name}.yaml to the kustomization`);
    const so = named(objects, 'ScaledObject', name);
    if (!so) {
      problem(`${where}: no ScaledObject ${name}`);
      continue;
    }
    const query = so.spec.triggers?.[0]?.metadata?.query;
    if (query !== backlogQuery(ns, pod.queues)) problem(`${where}: ${name} scales on ${query}, expected ${backlogQuery(ns, pod.queues)}`);
    if (config) {
      const paused = so.metadata.annotations?.[PAUSED] === '0';
      const enabled = pod.enabled(config);
      if (paused && enabled) problem(`${where}: ${name} is paused at 0 replicas but its feature is on in config.yaml: delete the ${PAUSED} annotation`);
      if (!paused && !enabled) problem(`${where}: ${pod.name}'s feature is off in config.yaml, so it exits 0 and its Deployment would crash-loop: annotate its ScaledObject ${PAUSED}: "0"`);
    }
  }
}

/** single-node: one pod running `all` on a volume, nothing that needs KEDA or the Prometheus Operator. */
export function checkSingleNode(where, objects, problem) {
  const deployments = ofKind(objects, 'Deployment');
  if (deployments.length !== 1 || JSON.stringify(deployments[0].spec.template.spec.containers[0].args) !== '["all"]') {
    problem(`${where}: expected one Deployment running ["all"], got ${deployments.map((d) => d.metadata.name).join(', ')}`);
    return;
  }
  const [d] = deployments;
  if (d.spec.replicas !== 1 || d.spec.strategy?.type !== 'Recreate') problem(`${where}: ${d.metadata.name} needs replicas 1 and strategy Recreate (ReadWriteOnce volume)`);
  for (const kind of ['ScaledObject', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'PodMonitor', 'PrometheusRule']) {
    if (ofKind(objects, kind).length) problem(`${where}: a ${kind} is left (a single-node install has no KEDA, no Prometheus Operator, one replica)`);
  }
  const volume = d.spec.template.spec.volumes?.find((v) => v.persistentVolumeClaim);
  if (!volume || !named(objects, 'PersistentVolumeClaim', volume.persistentVolumeClaim.claimName)) problem(`${where}: ${d.metadata.name} mounts no PersistentVolumeClaim of the overlay`);
}

/** A geo-replicated region: its pods prefer a configured location, and replication runs. */
export function checkGeoRegion(where, objects, fleet, config, problem) {
  const { env } = podSettings(objects);
  const preference = env.QUAY_DISTRIBUTED_STORAGE_PREFERENCE;
  if (!preference) problem(`${where}: quayfleet-env sets no QUAY_DISTRIBUTED_STORAGE_PREFERENCE`);
  if (!config) return preference;
  const locations = config.quay.DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS ?? [];
  if (locations.length < 2 || !locations.includes(preference)) problem(`${where}: DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS (${locations.join(', ')}) must hold both regions, ${preference} among them`);
  const replication = fleet.pods.find((p) => p.name === 'storagereplicationworker');
  if (!replication?.enabled(config)) problem(`${where}: storagereplicationworker is off in config.yaml`);
  return preference;
}

/**
 * The HPA overlay against the base it replaces: one HPA per ScaledObject, on the same External
 * metric and queues (the adapter turns it into the base's query), target, bounds and behaviour; no
 * ScaledObject left; the base's paused workers held at replicas 0 (an HPA leaves a Deployment at 0
 * alone), the others left to their HPA.
 */
export function checkHpa(where, objects, base, problem) {
  if (ofKind(objects, 'ScaledObject').length) problem(`${where}: ScaledObjects left beside the HPAs`);
  for (const so of ofKind(base, 'ScaledObject')) {
    const name = so.metadata.name;
    const hpa = named(objects, 'HorizontalPodAutoscaler', name);
    if (!hpa) {
      problem(`${where}: no HorizontalPodAutoscaler ${name} (the base scales it with KEDA)`);
      continue;
    }
    const metric = hpa.spec.metrics?.[0]?.external;
    const queues = metric?.metric?.selector?.matchExpressions?.find((e) => e.key === 'queue_name' && e.operator === 'In')?.values ?? [];
    const ns = hpa.metadata.namespace;
    const differences = [
      metric?.metric?.name !== 'quay_queue_items_available_unlocked' && `metric ${metric?.metric?.name}`,
      backlogQuery(ns, queues) !== so.spec.triggers[0].metadata.query && `queues ${queues.join(', ')}`,
      metric?.target?.type !== 'AverageValue' && `target type ${metric?.target?.type}`,
      String(metric?.target?.averageValue) !== so.spec.triggers[0].metadata.threshold && `target ${metric?.target?.averageValue} (KEDA threshold ${so.spec.triggers[0].metadata.threshold})`,
      hpa.spec.minReplicas !== so.spec.minReplicaCount && `minReplicas ${hpa.spec.minReplicas}`,
      hpa.spec.maxReplicas !== so.spec.maxReplicaCount && `maxReplicas ${hpa.spec.maxReplicas}`,
      hpa.spec.scaleTargetRef.name !== so.spec.scaleTargetRef.name && `target ${hpa.spec.scaleTargetRef.name}`,
      JSON.stringify(hpa.spec.behavior) !== JSON.stringify(so.spec.advanced?.horizontalPodAutoscalerConfig?.behavior) && 'behavior',
    ].filter(Boolean);
    if (differences.length) problem(`${where}: HPA ${name} differs from the base's ScaledObject: ${differences.join('; ')}`);
    const paused = so.metadata.annotations?.[PAUSED] === '0';
    const replicas = named(objects, 'Deployment', name)?.spec.replicas;
    if (paused && replicas !== 0) problem(`${where}: ${name} is paused in the base but its Deployment is not held at replicas 0`);
    if (!paused && replicas !== undefined) problem(`${where}: ${name} sets replicas ${replicas} (its HPA owns them)`);
  }
}
