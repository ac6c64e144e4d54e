/**
 * The dashboard and the alerts against a real Prometheus (Debian's `prometheus`) scraping a running
 * fleet: a front end and the worker processes a Kubernetes install runs, each a `quayfleet` child
 * process labelled as the PodMonitor labels a pod (job, namespace, component, pod). After some real
 * work (pushes, a pull, a deleted tag collected by GC, a failed login, a disabled notification,
 * repository mirrors failing against an upstream port nobody listens on):
 * - every query of deploy/grafana/quayfleet.json, its variables set to match all, returns data;
 * - every metric selector of every alert in deploy/prometheus/alerts.yaml returns data, and every
 *   label an alert groups, joins or filters by exists on the series it reads;
 * - QuayfleetMirrorFailing's expression fires (returns the failing namespace) on those mirrors.
 * So no dashboard panel or alert names a metric or label the fleet does not export.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, findNamespace } from '../../shared/db/namespaces.ts';
import { createMirror } from '../../shared/db/mirrors.ts';
import { withTransaction } from '../../shared/db/pool.ts';
import { createRepository } from '../../shared/db/repositories.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createUser, eventually, LoadTally, metricValue, pushRound, pushToken, startFleetProcess, type FleetProcess } from '../faults/fleet-process.ts';
import { startRedisServer } from '../servers/redis-topologies.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PROMETHEUS_PORT = 22559;
const REDIS_PORT = 22550;
const HTTP_PORT = 22551;
/** The mirrors' upstream: a port in this test's range that nothing listens on. */
const CLOSED_PORT = 22599;
const PASSWORD = 'password-1';
/** The worker processes started beside the front end: their metrics ports follow HTTP_PORT + 1. */
const WORKERS = ['gcworker', 'notificationworker', 'quotatotalworker', 'storagereplicationworker', 'repomirrorworker'] as const;

/**
 * Exported only by a process whose config is invalid (bin/degraded.ts; test/cli/start.test.ts
 * scrapes it there): a healthy fleet has no such series. Its labels are the target's.
 */
const DEGRADED_ONLY = new Set(['quayfleet_config_errors']);
const TARGET_LABELS = ['job', 'namespace', 'component', 'pod', 'instance'];

interface Selector { readonly text: string; readonly metric: string; readonly labels: string[] }

/** The metric selectors of a PromQL expression (`name{matchers}`), and the labels its matchers name. */
function selectorsOf(expr: string): Selector[] {
  const found: Selector[] = [];
  for (const match of expr.matchAll(/\b((?:quay|quayfleet)_[a-z0-9_]+|up)\b(\{[^}]*\})?/g)) {
    const labels = [...(match[2] ?? '').matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1]!);
    found.push({ text: match[0], metric: match[1]!, labels });
  }
  return found;
}

/** Labels an expression groups or joins by: `by (...)`, `on (...)`, `without (...)`, `ignoring (...)`. */
function groupingLabelsOf(expr: string): string[] {
  return [...expr.matchAll(/\b(?:by|on|without|ignoring)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim()).filter(Boolean));
}

describe('Grafana dashboard and alerts on a real Prometheus', { timeout: 600_000 }, () => {
  let redis: Awaited<ReturnType<typeof startRedisServer>>;
  let database: TestDatabase;
  let dir: string;
  const fleet: FleetProcess[] = [];
  let prometheus: ChildProcess | undefined;
  let prometheusOutput = '';

  const query = async (expr: string): Promise<unknown[]> => {
    const response = await fetch(`http://127.0.0.1:${PROMETHEUS_PORT}/api/v1/query?${new URLSearchParams({ query: expr })}`);
    const body = await response.json() as { status: string; error?: string; data?: { result: unknown[] } };
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
    return body.data!.result;
  };
  const labelsOf = async (metric: string): Promise<Set<string>> => {
    const response = await fetch(`http://127.0.0.1:${PROMETHEUS_PORT}/api/v1/series?${new URLSearchParams({ 'match[]': metric })}`);
    const body = await response.json() as { data: Record<string, string>[] };
    return new Set(body.data.flatMap((series) => Object.keys(series)));
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-prometheus-'));
    redis = await startRedisServer(REDIS_PORT);
    database = await createTestDatabase('prometheus');
    const config = {
      GARBAGE_COLLECTION_FREQUENCY: 1, PUSH_TEMP_TAG_EXPIRATION_SEC: 10, QUOTA_TOTAL_DELAY_SECONDS: 0, REPO_MIRROR_INTERVAL: 1,
      FEATURE_QUOTA_MANAGEMENT: true, FEATURE_REPO_MIRROR: true, FEATURE_STORAGE_REPLICATION: true, STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE: true,
      // Two locations on one disk: replication has a destination, and a backlog per location to export.
      DISTRIBUTED_STORAGE_CONFIG: { local_us: ['LocalStorage', { storage_path: path.join(dir, 'us') }], local_eu: ['LocalStorage', { storage_path: path.join(dir, 'eu') }] },
      DISTRIBUTED_STORAGE_PREFERENCE: ['local_us'], DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: ['local_us', 'local_eu'],
    };
    const processes = [['registry'], ...WORKERS.map((name) => ['worker', name])];
    fleet.push(...await Promise.all(processes.map((command, i) => startFleetProcess({
      dbUri: database.url, redisUrl: redis.url, httpPort: HTTP_PORT, metricsPort: HTTP_PORT + 1 + i, command, config,
    }))));

    const targets = processes.map((command, i) => ({
      targets: [`127.0.0.1:${HTTP_PORT + 1 + i}`],
      // What deploy/kubernetes/monitoring/podmonitor.yaml gives a pod: its namespace, component and pod name.
      labels: { namespace: 'quayfleet', component: command.at(-1)!, pod: `${command.at(-1)}-0` },
    }));
    const configFile = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(configFile, JSON.stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      scrape_configs: [{ job_name: 'quayfleet', static_configs: targets }],
    }));
    prometheus = spawn('prometheus', [
      `--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${PROMETHEUS_PORT}`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    prometheus.stderr!.on('data', (chunk: Buffer) => { prometheusOutput = (prometheusOutput + chunk.toString()).slice(-8000); });
    await eventually('Prometheus scrapes every process', async () => (await query('up == 1')).length === processes.length || undefined, 60_000);

    // Work for the panels: pushes and a pull, a deleted tag collected by GC, a failed login, and a
    // notification disabled after its failures beside an enabled one the push triggers.
    const [registry] = fleet;
    await createUser(database.url, 'alice', PASSWORD);
    const token = await pushToken(registry!.base, `127.0.0.1:${HTTP_PORT}`, 'alice', PASSWORD, 'alice/app');
    const tally = new LoadTally();
    expect(await pushRound(registry!.base, token, 'alice/app', tally), JSON.stringify([...tally.counts])).toBe(true);
    const repository = await database.pool.query<{ id: string }>(`SELECT r.id FROM repository r JOIN namespace n ON n.id = r.namespace_user_id WHERE n.username = 'alice' AND r.name = 'app'`);
    await database.pool.query(
      `INSERT INTO repositorynotification (repository_id, event, method, config_json, number_of_failures)
       VALUES ($1, 'repo_push', 'webhook', '{"url": "http://127.0.0.1:1/hook"}', 0), ($1, 'repo_push', 'webhook', '{"url": "http://127.0.0.1:1/gone"}', 3)`,
      [repository.rows[0]!.id]);
    expect(await pushRound(registry!.base, token, 'alice/app', tally), JSON.stringify([...tally.counts])).toBe(true);
    const failed = await fetch(`${registry!.base}/v2/auth?service=127.0.0.1:${HTTP_PORT}`, { headers: { authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` } });
    expect(failed.status).toBe(401);
    const gc = fleet[1]!;
    await eventually('GC deletes the first round\'s blobs', async () => (await metricValue(gc.metricsBase, 'quay_gc_storage_blobs_deleted_total')) >= 2 || undefined, 120_000);
    // The quota gauges refresh from Postgres at most every 30 s: wait for alice's backfilled total.
    const quota = fleet[1 + WORKERS.indexOf('quotatotalworker')]!;
    await eventually('quota gauges name alice', async () => (await query('quayfleet_quota_namespace_used_bytes')).length > 0 || undefined, 120_000);
    expect(quota.alive()).toBe(true);

    // Mirrors of alice's repositories against an upstream nobody answers: each sync fails (Quay's
    // countdown: three tries, then the next interval). The first mirror creates the failure series;
    // Prometheus's increase() counts from its first sample, so three more fail after it is scraped.
    const alice = (await findNamespace(database.pool, 'alice'))!;
    const robot = await createNamespace(database.pool, { username: 'alice+mirror', kind: 'robot' });
    const mirror = async (name: string) => {
      const repo = await createRepository(database.pool, { namespaceId: alice.id, name });
      await withTransaction(database.pool, (tx) => createMirror(tx, {
        repositoryId: repo.id, isEnabled: true, robotId: robot.id, externalReference: `127.0.0.1:${CLOSED_PORT}/library/app`,
        username: null, password: null, registryConfig: { verify_tls: false }, architectureFilter: [], syncInterval: 86_400,
        syncStartDate: new Date(Date.now() - 1000), ruleType: 1, ruleValue: ['*'], skopeoTimeout: 30,
      }));
    };
    await mirror('mirror-0');
    await eventually('Prometheus has the mirror failure series', async () => (await query('quay_repository_mirror_sync_failures_total')).length > 0 || undefined, 120_000);
    for (const name of ['mirror-1', 'mirror-2', 'mirror-3']) await mirror(name);
  });

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await Promise.all(fleet.map((process) => process.stop()));
    await database?.drop();
    await redis?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers every dashboard query with data', async () => {
    const dashboard = JSON.parse(fs.readFileSync(path.join(ROOT, 'deploy/grafana/quayfleet.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const empty: string[] = [];
    let count = 0;
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) {
        // Grafana's variables set to "All", as a fresh dashboard opens; a 1-minute rate window suits 1 s scrapes.
        const expr = target.expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m').replace(/\$(\w+)/g, '.*');
        count += 1;
        if ((await query(expr)).length === 0) empty.push(`${panel.title}: ${expr}`);
      }
    }
    expect(count).toBeGreaterThan(20);
    expect(empty, `queries without data:\n${empty.join('\n')}\n${prometheusOutput.slice(-1000)}`).toEqual([]);
  });

  it('fires QuayfleetMirrorFailing\'s expression on mirrors failing for real', async () => {
    const rules = parse(fs.readFileSync(path.join(ROOT, 'deploy/prometheus/alerts.yaml'), 'utf8')) as { spec: { groups: { rules: { alert: string; expr: string }[] }[] } };
    const { expr } = rules.spec.groups.flatMap((group) => group.rules).find((rule) => rule.alert === 'QuayfleetMirrorFailing')!;
    const firing = await eventually('QuayfleetMirrorFailing\'s expression returns a series', async () => {
      const result = await query(expr) as { metric: Record<string, string>; value: [number, string] }[];
      return result.length > 0 ? result : undefined;
    }, 180_000);
    expect(firing).toHaveLength(1);
    expect(firing[0]!.metric).toMatchObject({ namespace: 'quayfleet', exported_namespace: 'alice' });
    expect(firing[0]!.metric.reason).toBeTruthy();
    expect(Number(firing[0]!.value[1])).toBeGreaterThanOrEqual(3);
  });

  it('has data for every series and label each alert reads', async () => {
    const rules = parse(fs.readFileSync(path.join(ROOT, 'deploy/prometheus/alerts.yaml'), 'utf8')) as { spec: { groups: { rules: { alert: string; expr: string }[] }[] } };
    const problems: string[] = [];
    const alerts = rules.spec.groups.flatMap((group) => group.rules);
    for (const { alert, expr } of alerts) {
      // The expression itself must be valid PromQL for this Prometheus.
      await query(expr).catch((error: Error) => problems.push(`${alert}: ${error.message}`));
      const selectors = selectorsOf(expr);
      const available = new Set<string>();
      for (const selector of selectors) {
        if (DEGRADED_ONLY.has(selector.metric)) {
          for (const label of TARGET_LABELS) available.add(label);
          continue;
        }
        const labels = await labelsOf(selector.metric);
        for (const label of labels) available.add(label);
        if ((await query(selector.text)).length === 0) problems.push(`${alert}: ${selector.text} has no data`);
        for (const label of selector.labels) if (!labels.has(label)) problems.push(`${alert}: ${selector.metric} has no label ${label}`);
      }
      for (const label of groupingLabelsOf(expr)) if (!available.has(label)) problems.push(`${alert}: no series it reads has the label ${label}`);
    }
    expect(alerts.length).toBeGreaterThanOrEqual(14);
    expect(problems, problems.join('\n')).toEqual([]);
  });
});
