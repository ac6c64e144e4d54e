#!/usr/bin/env node
// Checks the deployment files without a cluster or Docker:
//   node deploy/validate.mjs
// 1. every YAML file (all documents) under deploy/ and docker-compose.yml parses, and every JSON file;
// 2. the fleet is consistent: one Deployment + ScaledObject per worker type, each running
//    `worker <name>`, exposing a port named `metrics` on 9091 with both probes, and scaling on its
//    own queues; docker-compose.yml runs the same set of workers;
// 3. when the tools are on PATH (Debian: apt-get install prometheus kubectl):
//    - promtool checks the alert rules, runs deploy/prometheus/alerts.test.yaml, and parses every
//      PromQL expression of the dashboard and of the ScaledObjects;
//    - kubectl kustomize renders deploy/kubernetes.
// Exits 1 on the first kind of failure, after printing every problem found.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rel = (p) => path.relative(root, p);
const problems = [];
const problem = (msg) => problems.push(msg);

/** Worker type -> its queues (ARCHITECTURE.md, "Workers and queues"). */
const WORKERS = {
  gcworker: ['garbagecollection'],
  namespacegcworker: ['namespacegc'],
  repositorygcworker: ['repositorygc'],
  quotatotalworker: ['quotatotal', 'quotaregistrysize'],
  repomirrorworker: ['repomirror'],
  storagereplicationworker: ['imagestoragereplication'],
  securityscanningnotificationworker: ['secscanv4'],
  notificationworker: ['notification'],
  exportactionlogsworker: ['exportactionlogs'],
  logrotateworker: ['actionlogrotation'],
  chunkcleanupworker: ['chunk_cleanup', 'blobuploadcleanup'],
};

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}

// 1. Parse everything.
const docsByFile = new Map();
const files = [...walk(path.join(root, 'deploy')), path.join(root, 'docker-compose.yml')].filter((f) => fs.existsSync(f));
for (const file of files) {
  const text = fs.readFileSync(file, 'utf8');
  if (/\.ya?ml$/.test(file)) {
    const docs = parseAllDocuments(text, { merge: true, uniqueKeys: true });
    const errors = docs.flatMap((d) => d.errors.map((e) => e.message));
    if (errors.length) problem(`${rel(file)}: ${errors.join('; ')}`);
    else docsByFile.set(rel(file), docs.map((d) => d.toJS({ maxAliasCount: 1000 })).filter((d) => d != null));
  } else if (file.endsWith('.json')) {
    try {
      docsByFile.set(rel(file), [JSON.parse(text)]);
    } catch (error) {
      problem(`${rel(file)}: ${error.message}`);
    }
  }
}
console.log(`parsed ${docsByFile.size} YAML/JSON files`);

// 2. Fleet consistency.
const k8s = [...docsByFile.entries()].filter(([f]) => f.startsWith('deploy/kubernetes/')).flatMap(([f, ds]) => ds.map((d) => ({ f, d })));
const byKind = (kind) => k8s.filter(({ d }) => d.kind === kind);
for (const [worker, queues] of Object.entries(WORKERS)) {
  const name = `quayfleet-${worker}`;
  const dep = byKind('Deployment').find(({ d }) => d.metadata.name === name)?.d;
  const so = byKind('ScaledObject').find(({ d }) => d.metadata.name === name)?.d;
  if (!dep) { problem(`no Deployment ${name}`); continue; }
  if (!so) problem(`no ScaledObject ${name}`);
  if (dep.spec.replicas !== undefined) problem(`${name}: Deployment sets replicas (the ScaledObject owns them)`);
  const c = dep.spec.template.spec.containers.find((x) => x.name === worker);
  if (!c) { problem(`${name}: no container named ${worker}`); continue; }
  if (JSON.stringify(c.args) !== JSON.stringify(['worker', worker])) problem(`${name}: args ${JSON.stringify(c.args)}`);
  if (!c.ports?.some((p) => p.name === 'metrics' && p.containerPort === 9091)) problem(`${name}: no port metrics/9091`);
  for (const probe of ['livenessProbe', 'readinessProbe']) if (!c[probe]) problem(`${name}: no ${probe}`);
  if (!c.resources?.requests || !c.resources?.limits) problem(`${name}: resources incomplete`);
  const init = dep.spec.template.spec.initContainers?.find((x) => x.name === 'migrate');
  if (JSON.stringify(init?.args) !== '["migrate"]') problem(`${name}: no migrate init container`);
  if (so) {
    if (so.spec.scaleTargetRef.name !== name) problem(`${name}: ScaledObject targets ${so.spec.scaleTargetRef.name}`);
    const query = so.spec.triggers[0].metadata.query;
    const m = /queue_name=~"([^"]+)"/.exec(query);
    if (!query.includes('quay_queue_items_available_unlocked') || !m || m[1] !== queues.join('|')) {
      problem(`${name}: query does not select exactly ${queues.join(', ')}: ${query}`);
    }
    if (so.spec.minReplicaCount > so.spec.maxReplicaCount) problem(`${name}: min > max replicas`);
  }
}
for (const { d } of byKind('Deployment')) {
  const known = d.metadata.name === 'quayfleet-registry' || d.metadata.name.replace(/^quayfleet-/, '') in WORKERS;
  if (!known) problem(`unexpected Deployment ${d.metadata.name}`);
}
// STOR-ED-2: spec.storage.emptyDir is one volume per pod, and these manifests run the front end and
// every worker in pods of their own (the front end with several replicas): the pods would not see
// each other's blobs. The boot check refuses it too (`registry` and `worker` run degraded).
const fleetConfig = docsByFile.get('deploy/kubernetes/config/config.yaml')?.[0];
if (fleetConfig?.spec?.storage?.emptyDir !== undefined) {
  problem('deploy/kubernetes/config/config.yaml: spec.storage.emptyDir cannot serve a fleet of pods (one volume each); use pvc (ReadWriteMany) or object storage');
}
for (const { f, d } of byKind('Deployment')) {
  const registryVolume = (d.spec?.template?.spec?.containers ?? []).flatMap((c) => c.volumeMounts ?? [])
    .filter((m) => m.mountPath === '/registry').map((m) => m.name);
  const emptyDirs = (d.spec?.template?.spec?.volumes ?? []).filter((v) => v.emptyDir !== undefined && registryVolume.includes(v.name));
  if (emptyDirs.length > 0 && (d.spec?.replicas ?? 1) > 1) problem(`${f}: ${d.metadata.name} mounts an emptyDir as the registry volume with ${d.spec.replicas} replicas`);
}

const compose = docsByFile.get('docker-compose.yml')?.[0];
if (compose) {
  for (const worker of Object.keys(WORKERS)) {
    const svc = compose.services?.[worker];
    if (!svc) problem(`docker-compose.yml: no service ${worker}`);
    else if (JSON.stringify(svc.command) !== JSON.stringify(['worker', worker])) problem(`docker-compose.yml: ${worker} command ${JSON.stringify(svc.command)}`);
  }
  for (const svc of ['postgres', 'redis', 'migrate', 'registry']) if (!compose.services?.[svc]) problem(`docker-compose.yml: no service ${svc}`);
}

// 3. External tools, when present.
const has = (tool) => {
  try {
    execFileSync(tool, ['--help'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    return error.code !== 'ENOENT';
  }
};
const run = (what, tool, args, cwd) => {
  try {
    execFileSync(tool, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    console.log(`ok: ${what}`);
  } catch (error) {
    problem(`${what}:\n${error.stdout ?? ''}${error.stderr ?? error.message}`);
  }
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quayfleet-deploy-'));
const { stringify } = await import('yaml');
if (has('promtool')) {
  const rule = docsByFile.get('deploy/prometheus/alerts.yaml')?.[0];
  if (rule) {
    fs.writeFileSync(path.join(tmp, 'rules.yaml'), stringify({ groups: rule.spec.groups }));
    fs.copyFileSync(path.join(root, 'deploy/prometheus/alerts.test.yaml'), path.join(tmp, 'alerts.test.yaml'));
    run('promtool check rules (alerts.yaml)', 'promtool', ['check', 'rules', 'rules.yaml'], tmp);
    run('promtool test rules (alerts.test.yaml)', 'promtool', ['test', 'rules', 'alerts.test.yaml'], tmp);
  }
  // Every dashboard and autoscaling query, as recording rules, so promtool parses the PromQL.
  const exprs = [];
  const dash = docsByFile.get('deploy/grafana/quayfleet.json')?.[0];
  for (const p of dash?.panels ?? []) for (const t of p.targets ?? []) exprs.push(t.expr);
  for (const { d } of byKind('ScaledObject')) exprs.push(d.spec.triggers[0].metadata.query);
  const concrete = exprs.map((e) => e.replaceAll('$__rate_interval', '5m').replace(/\$(\w+)/g, '.*'));
  const rules = concrete.map((expr, i) => ({ record: `quayfleet:check_${i}`, expr }));
  fs.writeFileSync(path.join(tmp, 'queries.yaml'), stringify({ groups: [{ name: 'queries', rules }] }));
  run(`promtool parses ${exprs.length} dashboard/autoscaling queries`, 'promtool', ['check', 'rules', 'queries.yaml'], tmp);
} else {
  console.log('skipped: promtool not on PATH');
}
if (has('kubectl')) {
  run('kubectl kustomize deploy/kubernetes', 'kubectl', ['kustomize', path.join(root, 'deploy/kubernetes')], root);
} else {
  console.log('skipped: kubectl not on PATH');
}
fs.rmSync(tmp, { recursive: true, force: true });

if (problems.length) {
  console.error(`\n${problems.length} problem(s):\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log('deploy files: all checks passed');
