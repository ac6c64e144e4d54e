/**
 * The dry run: exactly what GC would collect now in a scope (the whole registry, a namespace or a
 * repository), without changing anything. It evaluates the same plan (`plan.ts`) the real run
 * executes, in one read-only snapshot; per-namespace bytes attribute each freed blob once.
 */
import type { Pool, Queryable } from '../pool.ts';
import { FREED_BLOBS_CTE, inPlanSnapshot, PLAN_CTES, type PlanParams } from './plan.ts';
import { orphanPredicate } from './blobs.ts';

/** Where to look; names as users type them. `repository` is `name` (with `namespace`) or `namespace/name`. */
export interface DryRunScope {
  readonly namespace?: string;
  readonly repository?: string;
}

/** Figures of one namespace; `namespaceId` null groups blobs already orphaned (unscoped runs only). */
export interface NamespaceFigures {
  namespaceId: number | null;
  namespace: string | null;
  tags: number;
  manifests: number;
  leases: number;
  blobs: number;
  bytes: number;
}

/** The full answer of a dry run; ids let a test compare it with what the real run deletes. */
export interface DryRunReport {
  readonly nowMs: number;
  readonly scope: DryRunScope;
  readonly tags: { id: number; repositoryId: number; manifestId: number | null }[];
  readonly manifests: { id: number; repositoryId: number; digest: string }[];
  readonly leases: { id: number; repositoryId: number; blobId: number }[];
  readonly blobs: { id: number; digest: string; sizeBytes: number; namespaceId: number | null }[];
  readonly namespaces: NamespaceFigures[];
  readonly totals: Omit<NamespaceFigures, 'namespaceId' | 'namespace'>;
}

/** Thrown when the scope names a namespace or repository that does not exist (or is being deleted). */
export class ScopeNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScopeNotFoundError';
  }
}

/**
 * Computes the dry run for `scope` at `nowMs`. With `ignoreTimeMachine`, every ended tag counts
 * as garbage (the "reclaimable" view). Reads only; never writes.
 */
export async function dryRun(pool: Pool, scope: DryRunScope = {}, options: { nowMs?: number; ignoreTimeMachine?: boolean } = {}): Promise<DryRunReport> {
  const nowMs = options.nowMs ?? Date.now();
  return inPlanSnapshot(pool, async (db) => {
    const ids = await resolveScope(db, scope);
    const params: PlanParams = [ids.namespaceId, ids.repositoryId, nowMs, options.ignoreTimeMachine ?? false];
    return evaluate(db, params, scope, ids.namespaceId === null && ids.repositoryId === null);
  });
}

async function evaluate(db: Queryable, params: PlanParams, scope: DryRunScope, unscoped: boolean): Promise<DryRunReport> {
  const tags = await db.query<{ id: number; repositoryId: number; manifestId: number | null }>(
    `${PLAN_CTES} SELECT id, repository_id AS "repositoryId", manifest_id AS "manifestId" FROM garbage_tags ORDER BY id`, params);
  const manifests = await db.query<{ id: number; repositoryId: number; digest: string }>(
    `${PLAN_CTES} SELECT id, repository_id AS "repositoryId", digest FROM garbage_manifests ORDER BY id`, params);
  const leases = await db.query<{ id: number; repositoryId: number; blobId: number }>(
    `${PLAN_CTES} SELECT id, repository_id AS "repositoryId", blob_id AS "blobId" FROM garbage_leases ORDER BY id`, params);
  const blobs = await db.query<{ id: number; digest: string; sizeBytes: number; namespaceId: number | null }>(
    `${PLAN_CTES}${FREED_BLOBS_CTE}
     SELECT id, content_checksum AS digest, image_size AS "sizeBytes", namespace_id AS "namespaceId" FROM freed_blobs
     ${unscoped ? `UNION ALL SELECT s.id, s.content_checksum, s.image_size, NULL FROM imagestorage s
       WHERE ${orphanPredicate('$3')} AND s.content_checksum ~ '^sha256:[0-9a-f]{64}$'
         AND NOT EXISTS (SELECT 1 FROM freed_blobs f WHERE f.id = s.id)` : ''}
     ORDER BY id`, params);
  const namespaces = await figuresByNamespace(db, tags.rows, manifests.rows, leases.rows, blobs.rows);
  const sum = (key: 'tags' | 'manifests' | 'leases' | 'blobs' | 'bytes') => namespaces.reduce((n, f) => n + f[key], 0);
  return {
    nowMs: params[2], scope, tags: tags.rows, manifests: manifests.rows, leases: leases.rows, blobs: blobs.rows, namespaces,
    totals: { tags: sum('tags'), manifests: sum('manifests'), leases: sum('leases'), blobs: sum('blobs'), bytes: sum('bytes') },
  };
}

async function figuresByNamespace(
  db: Queryable,
  tags: { repositoryId: number }[], manifests: { repositoryId: number }[], leases: { repositoryId: number }[],
  blobs: { sizeBytes: number; namespaceId: number | null }[],
): Promise<NamespaceFigures[]> {
  const repositoryIds = [...new Set([...tags, ...manifests, ...leases].map((r) => r.repositoryId))];
  const { rows } = await db.query<{ id: number; namespace_id: number }>(
    `SELECT id, namespace_user_id AS namespace_id FROM repository WHERE id = ANY($1::bigint[])`, [repositoryIds]);
  const namespaceOf = new Map(rows.map((r) => [r.id, r.namespace_id]));
  const figures = new Map<number | null, NamespaceFigures>();
  const at = (namespaceId: number | null): NamespaceFigures => {
    let f = figures.get(namespaceId);
    if (!f) figures.set(namespaceId, f = { namespaceId, namespace: null, tags: 0, manifests: 0, leases: 0, blobs: 0, bytes: 0 });
    return f;
  };
  for (const t of tags) at(namespaceOf.get(t.repositoryId)!).tags += 1;
  for (const m of manifests) at(namespaceOf.get(m.repositoryId)!).manifests += 1;
  for (const l of leases) at(namespaceOf.get(l.repositoryId)!).leases += 1;
  for (const b of blobs) {
    const f = at(b.namespaceId);
    f.blobs += 1;
    f.bytes += b.sizeBytes;
  }
  const named = await db.query<{ id: number; username: string }>(
    `SELECT id, username FROM namespace WHERE id = ANY($1::bigint[])`, [[...figures.keys()].filter((k) => k !== null)]);
  for (const n of named.rows) figures.get(n.id)!.namespace = n.username;
  return [...figures.values()].sort((a, b) => (a.namespaceId ?? 0) - (b.namespaceId ?? 0));
}

/** Resolves names to ids; ScopeNotFoundError for an unknown (or deleted) namespace or repository. */
export async function resolveScope(db: Queryable, scope: DryRunScope): Promise<{ namespaceId: number | null; repositoryId: number | null }> {
  let namespace = scope.namespace;
  let repository = scope.repository;
  if (repository?.includes('/') && namespace === undefined) {
    namespace = repository.slice(0, repository.indexOf('/'));
    repository = repository.slice(repository.indexOf('/') + 1);
  }
  if (repository !== undefined && namespace === undefined) throw new ScopeNotFoundError('a repository needs its namespace (--namespace N, or N/R)');
  if (namespace === undefined) return { namespaceId: null, repositoryId: null };
  const ns = await db.query<{ id: number }>(`SELECT id FROM namespace WHERE username = $1 AND NOT deleted`, [namespace]);
  if (!ns.rows[0]) throw new ScopeNotFoundError(`namespace "${namespace}" not found`);
  if (repository === undefined) return { namespaceId: ns.rows[0].id, repositoryId: null };
  const repo = await db.query<{ id: number }>(
    `SELECT id FROM repository WHERE namespace_user_id = $1 AND name = $2 AND state <> 3`, [ns.rows[0].id, repository]);
  if (!repo.rows[0]) throw new ScopeNotFoundError(`repository "${namespace}/${repository}" not found`);
  return { namespaceId: ns.rows[0].id, repositoryId: repo.rows[0].id };
}

/** A dry run as the CLI and the API show it. */
export interface DryRunView {
  readonly generated: string;
  /**
   * GC-17: what a run would delete, by managementState: `metadata_and_blobs` (Managed) or
   * `metadata_only` (Removed, Unmanaged: the rows listed go, the storage objects stay).
   */
  readonly pruningMode: 'metadata_and_blobs' | 'metadata_only';
  readonly managementState: string;
  readonly scope: DryRunScope;
  readonly totals: DryRunReport['totals'];
  readonly namespaces: NamespaceFigures[];
  /** At most `limit` of each kind; `truncated` says whether more exist. */
  readonly items: {
    readonly tags: DryRunReport['tags'];
    readonly manifests: DryRunReport['manifests'];
    readonly blobs: DryRunReport['blobs'];
    readonly truncated: boolean;
  };
}

/** Figures per namespace and totals, plus at most `limit` items of each kind (0: none). */
export function presentDryRun(
  report: DryRunReport, limit: number, settings: { managementState: string; pruneBlobs: boolean } = { managementState: 'Managed', pruneBlobs: true },
): DryRunView {
  const cut = <T>(items: readonly T[]): T[] => items.slice(0, Math.max(0, limit));
  return {
    generated: new Date(report.nowMs).toISOString(),
    pruningMode: settings.pruneBlobs ? 'metadata_and_blobs' : 'metadata_only',
    managementState: settings.managementState,
    scope: report.scope,
    totals: report.totals,
    namespaces: report.namespaces,
    items: {
      tags: cut(report.tags), manifests: cut(report.manifests), blobs: cut(report.blobs),
      truncated: [report.tags, report.manifests, report.blobs].some((items) => items.length > limit),
    },
  };
}
