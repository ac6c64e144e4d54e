/**
 * The backfill benchmark's registry, inserted in bulk with set-based SQL (no pushes: the rows a
 * registry without quota totals has), and the backfill run over every namespace as the worker
 * runs it: the tick's discovery, then one namespace job per namespace, `concurrency` at once.
 */
import type { Pool } from '../../shared/db/pool.ts';
import { backfillNamespace, namespacesDueForBackfill, queueNamespacesNeedingBackfill } from '../../shared/db/quota/backfill.ts';
import { mapBounded } from '../../shared/storage/concurrency.ts';

/** How big the registry is. */
export interface RegistryShape {
  readonly namespaces: number;
  readonly repositoriesPerNamespace: number;
  readonly manifestsPerRepository: number;
  /** Blobs each namespace's manifests draw from (plus BASE_LAYERS shared registry-wide). */
  readonly blobsPerNamespace: number;
}

/** Base layers every namespace shares (counted once per namespace, once per repository). */
const BASE_LAYERS = 50;

/** Inserts the registry; returns the row counts. */
export async function insertRegistry(pool: Pool, shape: RegistryShape): Promise<Record<'namespaces' | 'repositories' | 'blobs' | 'manifests' | 'links', number>> {
  const { namespaces, repositoriesPerNamespace: perNs, manifestsPerRepository: perRepo, blobsPerNamespace } = shape;
  await pool.query(`INSERT INTO namespace (username, organization) SELECT 'bench' || g, true FROM generate_series(1, $1) g`, [namespaces]);
  await pool.query(
    `INSERT INTO repository (namespace_user_id, name) SELECT n.id, 'r' || g FROM namespace n CROSS JOIN generate_series(1, $1) g`, [perNs]);
  await pool.query(
    `INSERT INTO imagestorage (content_checksum, image_size)
     SELECT 'sha256:' || md5('b' || g) || md5('c' || g), 1024 + (g * 7919) % 1048576 FROM generate_series(1, $1) g`,
    [BASE_LAYERS + namespaces * blobsPerNamespace]);
  await pool.query(
    `INSERT INTO manifest (repository_id, digest, media_type, manifest_bytes)
     SELECT r.id, 'sha256:' || md5(r.id || ':' || g) || md5(g || ':' || r.id), 'application/vnd.oci.image.manifest.v1+json', '\\x7b7d'::bytea
     FROM repository r CROSS JOIN generate_series(1, $1) g`, [perRepo]);
  // Each manifest: one base layer and three distinct blobs of its namespace's pool.
  await pool.query(
    `WITH b AS (SELECT min(id) AS first FROM imagestorage), n AS (SELECT min(id) AS first FROM namespace)
     INSERT INTO manifestblob (repository_id, manifest_id, blob_id)
     SELECT m.repository_id, m.id, b.first - 1 + p.pick
     FROM manifest m JOIN repository r ON r.id = m.repository_id CROSS JOIN b CROSS JOIN n
     CROSS JOIN LATERAL (VALUES (1 + m.id % ${BASE_LAYERS}),
       (${BASE_LAYERS + 1} + (r.namespace_user_id - n.first) * $1 + (m.id * 3) % $1),
       (${BASE_LAYERS + 1} + (r.namespace_user_id - n.first) * $1 + (m.id * 3 + 1) % $1),
       (${BASE_LAYERS + 1} + (r.namespace_user_id - n.first) * $1 + (m.id * 3 + 2) % $1)) AS p(pick)`,
    [blobsPerNamespace]);
  await pool.query('ANALYZE');
  const { rows } = await pool.query<Record<'namespaces' | 'repositories' | 'blobs' | 'manifests' | 'links', number>>(
    `SELECT (SELECT count(*) FROM namespace)::int AS namespaces, (SELECT count(*) FROM repository)::int AS repositories,
            (SELECT count(*) FROM imagestorage)::int AS blobs, (SELECT count(*) FROM manifest)::int AS manifests,
            (SELECT count(*) FROM manifestblob)::int AS links`);
  return rows[0]!;
}

/** Finds every namespace without totals and computes them, `concurrency` at once; returns how many were computed. */
export async function backfillAll(pool: Pool, concurrency: number): Promise<number> {
  const nowMs = Date.now();
  for (;;) {
    if ((await queueNamespacesNeedingBackfill(pool, nowMs, 10_000)) === 0) break;
  }
  const due = await namespacesDueForBackfill(pool, nowMs, 0, Number.MAX_SAFE_INTEGER);
  const outcomes = await mapBounded(due, concurrency, (ns) => backfillNamespace(pool, ns.id));
  return outcomes.filter((o) => o === 'computed').length;
}
