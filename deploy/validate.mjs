#!/usr/bin/env node
// Checks the deployment files without a cluster or Docker:
//   node deploy/validate.mjs [--deploy-root DIR]
// (--deploy-root: check the deploy/ and docker-compose.yml under DIR against this project's code;
// test/ops/deploy-validate.test.ts uses it on broken copies.)
// 1. every YAML file (all documents) under deploy/ and docker-compose.yml parses, and every JSON file;
// 2. the fleet is the code's: the worker pod types and their queues come from workers/catalog.ts
//    (deploy/validate/fleet.mjs), and each has one Deployment + ScaledObject (running
//    `worker <name>`, port `metrics` 9091, probes, resources, migrate init container, scaling on
//    exactly its own queues) and one docker-compose.yml service; nothing names a worker that does
//    not exist; a ScaledObject is paused exactly when its worker's feature is off in config.yaml;
// 3. `kubectl kustomize` renders the base and every overlay under deploy/overlays, each rendering
//    is checked (deploy/validate/overlays.mjs: its config.yaml parses for its pods, single-node runs
//    one `all` pod, each geo region prefers a configured location, the HPA overlay matches KEDA),
//    and every rendered object is validated against the pinned JSON schema of its kind
//    (deploy/validate/schemas.mjs);
// 4. `docker compose config` (or Debian's docker-compose v1) accepts docker-compose.yml;
// 5. promtool checks the alert rules, runs deploy/prometheus/alerts.test.yaml, and parses every
//    PromQL expression of the dashboard and of the ScaledObjects.
// kubectl, docker-compose and promtool are required under CI (CI=true, .ci/run installs them);
// elsewhere a missing one is reported as skipped. Exits 1 after printing every problem found.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { loadFleet } from './validate/fleet.mjs';
import { checkCommon, checkGeoRegion, checkHpa, checkKedaFleet, checkSingleNode } from './validate/overlays.mjs';
import { loadSchemaValidator } from './validate/schemas.mjs';

const project = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rootArg = process.argv.indexOf('--deploy-root');
const root = rootArg > 0 ? path.resolve(process.argv[rootArg + 1]) : project;
const rel = (p) => path.relative(root, p);
const problems = [];
const problem = (msg) => problems.push(msg);
const skipped = [];
const ci = Boolean(process.env.CI);

const fleet = await loadFleet(project);
/** Pod type -> its queues, from workers/catalog.ts. */
const WORKERS = Object.fromEntries(fleet.pods.map((p) => [p.name, p.queues]));
console.log(`workers/catalog.ts: ${fleet.pods.length} worker pod types (${fleet.pods.map((p) => p.name).join(', ')})`);

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
    if (!svc) problem(`docker-compose.yml: no service ${worker} (workers/catalog.ts has it)`);
    else if (JSON.stringify(svc.command) !== JSON.stringify(['worker', worker])) problem(`docker-compose.yml: ${worker} command ${JSON.stringify(svc.command)}`);
  }
  const infrastructure = ['postgres', 'redis', 'migrate', 'registry'];
  for (const svc of infrastructure) if (!compose.services?.[svc]) problem(`docker-compose.yml: no service ${svc}`);
  for (const svc of Object.keys(compose.services ?? {})) {
    if (!infrastructure.includes(svc) && !(svc in WORKERS)) problem(`docker-compose.yml: service ${svc} is no worker of workers/catalog.ts`);
  }
}

// 3-5. External tools.
const has = (tool, args = ['--help']) => {
  try {
    execFileSync(tool, args, { stdio: 'ignore' });
    return true;
  } catch (error) {
    return error.code !== 'ENOENT' && !(error.status === 1 && args[0] === 'compose');
  }
};
const run = (what, tool, args, cwd) => {
  try {
    const stdout = execFileSync(tool, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
    console.log(`ok: ${what}`);
    return stdout.toString('utf8');
  } catch (error) {
    problem(`${what}:\n${error.stdout ?? ''}${error.stderr ?? error.message}`);
    return undefined;
  }
};
/** A required tool is missing: a problem under CI, a note elsewhere. */
const missing = (tool, install) => {
  if (ci) problem(`${tool} is not on PATH (${install})`);
  else skipped.push(`${tool} not on PATH (${install})`);
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quayfleet-deploy-'));

// 3. kustomize: the base and every overlay, rendered and checked.
const kustomizations = [path.join(root, 'deploy/kubernetes'), ...walk(path.join(root, 'deploy/overlays'))
  .filter((f) => path.basename(f) === 'kustomization.yaml').map((f) => path.dirname(f))
  // A Component (geo/common) is rendered through the overlays that use it.
  .filter((dir) => !/^kind:\s*Component\s*$/m.test(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')))].sort();
if (has('kubectl', ['version', '--client'])) {
  // kustomize v5 at least: the base uses `replacements` with options, the overlays Components and
  // patches selected by label. kubectl prints the kustomize it embeds.
  const kustomize = /Kustomize Version: (v(\d+)\S*)/.exec(execFileSync('kubectl', ['version', '--client'], { encoding: 'utf8' }));
  if (!kustomize || Number(kustomize[2]) < 5) problem(`kubectl embeds kustomize ${kustomize?.[1] ?? '(unknown)'}; these files need v5 or later (kubectl >= 1.27)`);
  else console.log(`kustomize ${kustomize[1]} (kubectl)`);
  const schemas = await loadSchemaValidator(project);
  if (schemas) console.log(`schemas: ${schemas.versions.join(', ')}`);
  else if (ci) problem('the Kubernetes schema packages (kubernetes-models, @kubernetes-models/keda, @kubernetes-models/prometheus-operator) are not installed: npm install');
  else skipped.push('schema validation: kubernetes-models not installed (npm install)');
  const rendered = new Map();
  for (const dir of kustomizations) {
    const output = run(`kubectl kustomize ${rel(dir)}`, 'kubectl', ['kustomize', dir], root);
    if (output !== undefined) rendered.set(rel(dir), parseAllDocuments(output).map((d) => d.toJS()).filter((d) => d != null));
  }
  const base = rendered.get('deploy/kubernetes');
  const regions = [];
  for (const [where, objects] of rendered) {
    const config = checkCommon(where, objects, fleet, problem);
    if (objects.some((o) => o.kind === 'ScaledObject')) checkKedaFleet(where, objects, fleet, config, problem);
    if (where.endsWith('/single-node')) checkSingleNode(where, objects, problem);
    if (where.includes('/geo/')) regions.push(checkGeoRegion(where, objects, fleet, config, problem));
    if (where.endsWith('/hpa') && base) checkHpa(where, objects, base, problem);
    let invalid = 0;
    for (const object of schemas ? objects : []) {
      for (const error of await schemas.check(object)) {
        invalid += 1;
        problem(`${where}: ${object.kind} ${object.metadata?.name}: ${error}`);
      }
    }
    if (schemas && invalid === 0) console.log(`ok: ${where}: ${objects.length} objects valid against their schemas`);
  }
  if (regions.length && new Set(regions).size !== regions.length) problem(`deploy/overlays/geo: the regions prefer the same location (${regions.join(', ')})`);
  for (const name of ['single-node', 'hpa']) if (!rendered.has(`deploy/overlays/${name}`)) problem(`deploy/overlays/${name} missing or not rendered`);
  if (regions.length < 2) problem('deploy/overlays/geo: expected two regions');
} else {
  missing('kubectl', 'kubectl kustomize renders the manifests; any kubectl >= 1.27 has kustomize v5');
}

// 4. docker compose config: the Compose v2 plugin when there, else Debian's docker-compose (v1.29,
// which predates the top-level `name:`, so it reads a copy without that key).
const composeFile = path.join(root, 'docker-compose.yml');
if (has('docker', ['compose', 'version'])) {
  run('docker compose config', 'docker', ['compose', '-f', composeFile, 'config', '--quiet'], root);
} else if (has('docker-compose', ['version'])) {
  const copy = path.join(tmp, 'docker-compose.yml');
  fs.writeFileSync(copy, fs.readFileSync(composeFile, 'utf8').replace(/^name: .*\n/m, ''));
  run('docker-compose config (v1)', 'docker-compose', ['--project-directory', root, '-f', copy, 'config', '--quiet'], root);
} else {
  missing('docker-compose', 'apt-get install docker-compose');
}

// 5. promtool.
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
  missing('promtool', 'apt-get install prometheus');
}
fs.rmSync(tmp, { recursive: true, force: true });

for (const note of skipped) console.log(`skipped: ${note}`);
if (problems.length) {
  console.error(`\n${problems.length} problem(s):\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log('deploy files: all checks passed');
