/**
 * Upload cleanup benchmark: N abandoned sessions (each a `blobupload` row three days idle, a staged
 * 1 KiB object and a one-part multipart write) cancelled with their bytes, per driver.
 *
 * - quayfleet: `cancelAbandonedSessions` (batches of 100 rows in one transaction each, the
 *   sessions' storage cleaned 8 at a time, every multipart write and staged object of the upload
 *   found by listing).
 * - peer, Quay's BlobUploadCleanupWorker loop on the same storage layer: fetch ONE stale row, cancel
 *   its upload from the recorded metadata (delete the staged object, abort the recorded multipart
 *   write), delete the row, repeat until none is left.
 *
 * Each side gets its own N sessions; the sides alternate in rounds so load on the machine hits both.
 *
 *   npm run bench -- uploads       (BENCH_SCALE=0.2 for a fifth; BENCH_DRIVERS=local,radosgw)
 *
 * Needs Postgres at TEST_DATABASE_URL and, for radosgw, the test RadosGW. Last line: one JSON object.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureLocations } from '../../shared/db/blobs.ts';
import type { Pool } from '../../shared/db/pool.ts';
import { mapBounded } from '../../shared/storage/concurrency.ts';
import { createDistributedStorage, type DistributedStorage } from '../../shared/storage/distributed.ts';
import { uploadKey } from '../../shared/storage/keys.ts';
import { createTestDatabase } from '../../test/helpers/db.ts';
import { preparePostgresTemplate } from '../../test/servers/postgres-redis.ts';
import { RADOSGW } from '../../test/servers/storage-endpoints.ts';
import { cancelAbandonedSessions } from '../../workers/chunkcleanupworker/sessions.ts';
import { loadLine, printResult } from '../report.ts';

console.log(loadLine('before'));

const scale = Number(process.env.BENCH_SCALE ?? 1);
if (!(scale > 0)) throw new Error('BENCH_SCALE must be a positive number');
const SESSIONS = Math.max(50, Math.round(1000 * scale));
const ROUNDS = 2;
const THRESHOLD_MS = 2 * 86_400_000;
const drivers = (process.env.BENCH_DRIVERS ?? 'local,radosgw').split(',').map((d) => d.trim()).filter(Boolean);

await preparePostgresTemplate();

function locationConfig(driver: string, root: string): [string, Record<string, unknown>] {
  if (driver === 'local') return ['LocalStorage', { storage_path: root }];
  if (driver === 'radosgw') {
    return ['RadosGWStorage', {
      hostname: RADOSGW.host, port: RADOSGW.port, access_key: RADOSGW.accessKey, secret_key: RADOSGW.secretKey,
      bucket_name: RADOSGW.bucket, storage_path: `bench-uploads-${randomBytes(4).toString('hex')}`,
    }];
  }
  throw new Error(`unknown BENCH_DRIVERS entry ${driver} (local, radosgw)`);
}

async function abandon(pool: Pool, storage: DistributedStorage, repositoryId: number, locationId: number, count: number): Promise<void> {
  const store = storage.preferredStore();
  const at = new Date(Date.now() - 3 * 86_400_000);
  await mapBounded(Array.from({ length: count }, (_, i) => i), 16, async () => {
    const uuid = randomUUID();
    const writer = await store.createMultipart(uploadKey(uuid));
    await writer.writePart(1, randomBytes(1024), 1024);
    const staged = `${uploadKey(uuid)}.staged-${randomBytes(6).toString('hex')}`;
    await store.put(staged, randomBytes(1024));
    await pool.query(
      `INSERT INTO blobupload (repository_id, uuid, byte_count, location_id, storage_metadata, created, updated) VALUES ($1, $2, 2048, $3, $4, $5, $5)`,
      [repositoryId, uuid, locationId, JSON.stringify({ uploadId: writer.uploadId, parts: 1, tail: { key: staged, bytes: 1024 } }), at]);
  });
}

// Quay's loop (blobuploadcleanupworker.py): one row at a time, cancelled from its metadata.
async function quayLoop(pool: Pool, storage: DistributedStorage): Promise<number> {
  const store = storage.preferredStore();
  let sessions = 0;
  for (;;) {
    const { rows } = await pool.query<{ id: number; uuid: string; meta: { uploadId?: string; tail?: { key: string } } }>(
      `SELECT id, uuid::text AS uuid, storage_metadata AS meta FROM blobupload WHERE created <= now() - make_interval(secs => $1::float8 / 1000) LIMIT 1`, [THRESHOLD_MS]);
    const row = rows[0];
    if (!row) return sessions;
    if (row.meta.tail) await store.delete(row.meta.tail.key).catch(() => undefined);
    if (row.meta.uploadId) await store.abortMultipartUpload({ key: uploadKey(row.uuid), uploadId: row.meta.uploadId, initiated: new Date(0) }).catch(() => undefined);
    await pool.query(`DELETE FROM blobupload WHERE id = $1`, [row.id]);
    sessions += 1;
  }
}

async function leftovers(storage: DistributedStorage): Promise<number> {
  let n = 0;
  for await (const _ of storage.preferredStore().list('uploads/')) n += 1;
  for await (const _ of storage.preferredStore().listMultipartUploads('uploads/')) n += 1;
  return n;
}

const results: Record<string, { quayfleet: number; quay: number; ratio: number; rounds: { quayfleet: number; quay: number }[] }> = {};
for (const driver of drivers) {
  const database = await createTestDatabase(`benchuploads_${driver}`);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'qf-bench-uploads-'));
  const storage = await createDistributedStorage({ DISTRIBUTED_STORAGE_CONFIG: { bench: locationConfig(driver, root) }, DISTRIBUTED_STORAGE_PREFERENCE: ['bench'] });
  try {
    const locationId = (await ensureLocations(database.pool, ['bench'])).get('bench')!;
    const ns = await database.pool.query<{ id: number }>(`INSERT INTO namespace (username) VALUES ('bench') RETURNING id`);
    const repo = await database.pool.query<{ id: number }>(`INSERT INTO repository (namespace_user_id, name) VALUES ($1, 'app') RETURNING id`, [ns.rows[0]!.id]);
    const rounds: { quayfleet: number; quay: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const round = { quayfleet: 0, quay: 0 };
      for (const side of r % 2 === 0 ? ['quayfleet', 'quay'] as const : ['quay', 'quayfleet'] as const) {
        await abandon(database.pool, storage, repo.rows[0]!.id, locationId, SESSIONS);
        const started = performance.now();
        const cancelled = side === 'quayfleet'
          ? (await cancelAbandonedSessions(database.pool, storage, { nowMs: Date.now(), thresholdMs: THRESHOLD_MS })).sessions
          : await quayLoop(database.pool, storage);
        const seconds = (performance.now() - started) / 1000;
        if (cancelled !== SESSIONS) throw new Error(`${side} cancelled ${cancelled} of ${SESSIONS} sessions`);
        const left = await leftovers(storage);
        if (left !== 0) throw new Error(`${side} left ${left} objects or multipart uploads behind`);
        round[side] = SESSIONS / seconds;
        console.log(`${driver} round ${r + 1} ${side}: ${SESSIONS} sessions in ${seconds.toFixed(2)} s (${round[side].toFixed(0)} sessions/s)`);
      }
      rounds.push(round);
    }
    const mean = (side: 'quayfleet' | 'quay'): number => rounds.reduce((s, r) => s + r[side], 0) / rounds.length;
    results[driver] = { quayfleet: Math.round(mean('quayfleet')), quay: Math.round(mean('quay')), ratio: Number((mean('quayfleet') / mean('quay')).toFixed(2)), rounds };
  } finally {
    await storage.close();
    await database.drop();
    await fs.rm(root, { recursive: true, force: true });
  }
}

const ratios = Object.values(results).map((r) => r.ratio);
const ratio = Number(Math.exp(ratios.reduce((s, x) => s + Math.log(x), 0) / ratios.length).toFixed(2));
printResult({ bench: 'uploads', sessions: SESSIONS, unit: 'abandoned sessions cancelled per second', drivers: results, peer: "Quay's one-row-at-a-time loop on the same storage layer", ratio });
