/**
 * Storage locations as rows (`imagestoragelocation`): what removing one touches (Quay's
 * util/removelocation.py). Storage objects are never touched: the location is being retired.
 */
import { withTransaction, type Pool, type Queryable } from './pool.ts';

/** The location's id, or undefined when no row has that name. */
export async function locationId(db: Queryable, name: string): Promise<number | undefined> {
  const { rows } = await db.query<{ id: number }>(`SELECT id FROM imagestoragelocation WHERE name = $1`, [name]);
  return rows[0]?.id;
}

/** Blobs whose only placement is location `id` (removing it would leave them nowhere). */
export async function soleCopyCount(db: Queryable, id: number): Promise<number> {
  const { rows } = await db.query<{ count: number }>(
    `SELECT count(*)::int AS count FROM imagestorageplacement p
      WHERE p.location_id = $1 AND NOT EXISTS (SELECT 1 FROM imagestorageplacement o WHERE o.storage_id = p.storage_id AND o.location_id <> $1)`, [id]);
  return rows[0]!.count;
}

/** Placements recorded in location `id` (what removing it deletes). */
export async function placementCount(db: Queryable, id: number): Promise<number> {
  const { rows } = await db.query<{ count: number }>(`SELECT count(*)::int AS count FROM imagestorageplacement WHERE location_id = $1`, [id]);
  return rows[0]!.count;
}

/**
 * Removes location `id`: its upload sessions, pending deletions and namespace regions, then its
 * placements `batchSize` per transaction (each deleted id reported to `onPlacement`), then the
 * row. Returns the placements deleted.
 */
export async function removeLocation(pool: Pool, id: number, options: { batchSize?: number; onPlacement(placementId: number): void }): Promise<number> {
  await withTransaction(pool, async (tx) => {
    await tx.query(`DELETE FROM blobupload WHERE location_id = $1`, [id]);
    await tx.query(`DELETE FROM pendingstoragedeletion WHERE location_id = $1`, [id]);
    await tx.query(`DELETE FROM userregion WHERE location_id = $1`, [id]);
  });
  let total = 0;
  for (;;) {
    const { rows } = await pool.query<{ id: number }>(
      `DELETE FROM imagestorageplacement WHERE id IN (
         SELECT id FROM imagestorageplacement WHERE location_id = $1 ORDER BY id LIMIT $2) RETURNING id`, [id, options.batchSize ?? 1000]);
    if (rows.length === 0) break;
    for (const row of rows.sort((a, b) => a.id - b.id)) options.onPlacement(row.id);
    total += rows.length;
  }
  await pool.query(`DELETE FROM imagestoragelocation WHERE id = $1`, [id]);
  return total;
}
