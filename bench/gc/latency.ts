/**
 * Latency from "a tag leaves the time machine" to "its unique blobs are gone from storage", with
 * the default configuration and the real path: the tag delete's transaction schedules the
 * `garbagecollection` job through the outbox (scheduleTagCollection, as the API does), the relay
 * publishes it delayed to that second, the gcworker collects and deletes the objects.
 */
import { randomBytes } from 'node:crypto';
import { parseConfig } from '../../shared/config/index.ts';
import { withTransaction, type Pool } from '../../shared/db/pool.ts';
import { scheduleTagCollection } from '../../shared/db/tag-history.ts';
import { createLogger } from '../../shared/runtime/logger.ts';
import { startOutboxRelay } from '../../shared/runtime/outbox-relay.ts';
import type { DistributedStorage } from '../../shared/storage/distributed.ts';
import { blobKey } from '../../shared/storage/keys.ts';
import { buildModel, insertModelRows, writeModelObjects } from '../../test/gc/bulk.ts';
import { startGcWorker } from './quayfleet.ts';

/** Milliseconds from the instant each tag left the window to its last unique blob disappearing. */
export async function measureLatency(pool: Pool, url: string, storage: DistributedStorage, locationId: number, samples: number): Promise<number[]> {
  const config = parseConfig({});
  const windowS = config.defaultTagExpirationSeconds;
  const fleet = await startGcWorker(pool, storage, 4, config);
  const relay = await startOutboxRelay({ db: pool, connectionString: url, producer: fleet.producer, log: createLogger({ level: 'warn' }) });
  const latencies: number[] = [];
  try {
    for (let i = 0; i < samples; i++) latencies.push(await sample(pool, storage, locationId, windowS, i));
  } finally {
    await relay.stop();
    await fleet.stop();
  }
  return latencies;
}

async function sample(pool: Pool, storage: DistributedStorage, locationId: number, windowS: number, i: number): Promise<number> {
  const model = buildModel({ namespaces: 1, repositories: 1, manifests: 1, blobsPerManifest: 5, garbageFraction: 0, prefix: `lat${i}${randomBytes(3).toString('hex')}` });
  await writeModelObjects(model, storage.preferredStore());
  const [repositoryId] = await insertModelRows(pool, model, { locationId, nowMs: Date.now(), windowS });
  // Delete the tag now minus the window plus 1.5 s: it leaves the time machine 1.5 s from now.
  const leavesAtMs = Date.now() + 1500;
  await withTransaction(pool, async (tx) => {
    await tx.query(`UPDATE tag SET lifetime_end_ms = $2 WHERE repository_id = $1`, [repositoryId, leavesAtMs - windowS * 1000]);
    await scheduleTagCollection(tx, { repositoryId: repositoryId!, namespace: model.repositories[0]!.namespace, repository: 'repo0', dueAtS: Math.ceil(leavesAtMs / 1000) });
  });
  const keys = model.repositories[0]!.manifests[0]!.blobs.map((b) => blobKey(b.digest));
  const store = storage.preferredStore();
  for (;;) {
    const present = await Promise.all(keys.map((key) => store.exists(key)));
    if (!present.some(Boolean)) return Date.now() - leavesAtMs;
    if (Date.now() - leavesAtMs > 120_000) throw new Error('blobs still present two minutes after the tag left the time machine');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
