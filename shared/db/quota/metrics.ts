/**
 * Quota metrics (quayfleet extensions; Quay has none, PROJQUAY-6560 proposes some). Per-namespace
 * series are bounded: only the QUOTA_METRICS_TOP_N namespaces using the most bytes get one, so a
 * registry with a million namespaces still exports a few dozen series. The gauges read Postgres at
 * scrape time, at most every REFRESH_MS; the process that binds a pool (the quota worker) exports them.
 */
import { client, metric } from '../../metrics/index.ts';
import type { Pool } from '../pool.ts';
import type { QuotaSettings } from './settings.ts';

/** Where a push was refused for quota. */
export type RejectionStage = 'upload_start' | 'upload_chunk' | 'upload_complete' | 'manifest';

/** Pushes refused with `Quota has been exceeded on namespace`, by where they were refused. */
export const quotaRejections = metric('quayfleet_quota_pushes_rejected_total', () => new client.Counter({
  name: 'quayfleet_quota_pushes_rejected_total',
  help: 'registry requests refused because the namespace is over a Reject quota limit, by stage',
  labelNames: ['stage'],
}));

/** Namespace backfills run by the quota worker, by outcome (`computed`, `already_complete`, `gone`). */
export const quotaBackfills = metric('quayfleet_quota_backfills_total', () => new client.Counter({
  name: 'quayfleet_quota_backfills_total',
  help: 'namespace quota backfills, by outcome',
  labelNames: ['outcome'],
}));

const REFRESH_MS = 30_000;

interface Snapshot {
  atMs: number;
  top: { namespace: string; used: number; configured: number }[];
  states: Record<'missing' | 'waiting' | 'complete', number>;
  registryBytes: number;
}

let source: { pool: Pool; settings: QuotaSettings } | undefined;
let snapshot: Snapshot | undefined;
let refreshing: Promise<Snapshot | undefined> | undefined;

async function readSnapshot(pool: Pool, settings: QuotaSettings): Promise<Snapshot> {
  const [top, states, registry] = await Promise.all([
    pool.query<{ namespace: string; used: number; configured: number | null }>(
      `SELECT n.username AS namespace, s.size_bytes AS used, q.limit_bytes AS configured
       FROM quotanamespacesize s JOIN namespace n ON n.id = s.namespace_user_id
       LEFT JOIN userorganizationquota q ON q.namespace_id = s.namespace_user_id
       WHERE s.backfill_complete ORDER BY s.size_bytes DESC, s.namespace_user_id LIMIT $1`, [settings.metricsTopN]),
    pool.query<{ missing: number; waiting: number; complete: number }>(
      `SELECT (SELECT count(*) FROM namespace n WHERE NOT n.robot AND NOT n.deleted
                 AND NOT EXISTS (SELECT 1 FROM quotanamespacesize s WHERE s.namespace_user_id = n.id))::bigint AS missing,
              (SELECT count(*) FROM quotanamespacesize WHERE NOT backfill_complete)::bigint AS waiting,
              (SELECT count(*) FROM quotanamespacesize WHERE backfill_complete)::bigint AS complete`),
    pool.query<{ size_bytes: number }>(`SELECT size_bytes FROM quotaregistrysize ORDER BY id LIMIT 1`),
  ]);
  return {
    atMs: Date.now(),
    top: top.rows.map((r) => ({ namespace: r.namespace, used: r.used, configured: r.configured ?? settings.defaultRejectBytes })),
    states: states.rows[0]!,
    registryBytes: registry.rows[0]?.size_bytes ?? 0,
  };
}

// One refresh at a time; a failed one keeps the last snapshot (a scrape must not fail on it).
async function current(): Promise<Snapshot | undefined> {
  const bound = source;
  if (!bound) return undefined;
  if (snapshot && Date.now() - snapshot.atMs < REFRESH_MS) return snapshot;
  refreshing ??= readSnapshot(bound.pool, bound.settings)
    .then((s) => (snapshot = s), () => snapshot)
    .finally(() => { refreshing = undefined; });
  return refreshing;
}

/** A per-namespace gauge over the snapshot's top namespaces. */
function namespaceGauge(name: string, help: string, value: (row: Snapshot['top'][number]) => number): void {
  metric(name, () => new client.Gauge({
    name, help, labelNames: ['namespace'],
    async collect() {
      const s = await current();
      this.reset();
      for (const row of s?.top ?? []) this.set({ namespace: row.namespace }, value(row));
    },
  }));
}

namespaceGauge('quayfleet_quota_namespace_used_bytes',
  'quota bytes used by the namespaces using the most (QUOTA_METRICS_TOP_N of them)', (row) => row.used);
namespaceGauge('quayfleet_quota_namespace_configured_bytes',
  'configured quota (or the system default) of the namespaces in quayfleet_quota_namespace_used_bytes', (row) => row.configured);

metric('quayfleet_quota_backfill_namespaces', () => new client.Gauge({
  name: 'quayfleet_quota_backfill_namespaces',
  help: 'namespaces by quota totals state: missing (not seen yet), waiting (backfill queued), complete',
  labelNames: ['state'],
  async collect() {
    const s = await current();
    if (!s) return;
    for (const [state, count] of Object.entries(s.states)) this.set({ state }, count);
  },
}));

metric('quayfleet_quota_registry_size_bytes', () => new client.Gauge({
  name: 'quayfleet_quota_registry_size_bytes',
  help: 'the registry total as last computed on request (quotaregistrysize)',
  async collect() {
    const s = await current();
    if (s) this.set(s.registryBytes);
  },
}));

/** Makes the gauges read from `pool` (idempotent; the quota worker calls it on every job). */
export function bindQuotaGauges(pool: Pool, settings: QuotaSettings): void {
  if (source?.pool !== pool) snapshot = undefined;
  source = { pool, settings };
}
