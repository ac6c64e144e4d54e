/**
 * The fleet on a real 3-master Redis Cluster and on a Sentinel-managed master (test/servers/
 * redis-topologies.ts): REDIS_URL's forms, the queue runtime on the Cluster (completions, a dead
 * letter, a retry with backoff, a schedule), and a whole `quayfleet all` process taking a push whose
 * deleted tag GC collects — on the Cluster, and on Sentinel across a failover (the master
 * SIGKILLed, a replica promoted).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createUser, eventually, LoadTally, metricValue, pushRound, pushToken, startFleetProcess, type FleetProcess } from '../faults/fleet-process.ts';
import { startRedisCluster, startRedisSentinel, type RedisCluster, type RedisSentinelSetup } from '../servers/redis-topologies.ts';
import { createProducer } from '../../shared/runtime/producer.ts';
import { connectRedis, parseRedisUrl, queuePrefix, RedisUrlError } from '../../shared/runtime/redis.ts';
import { PermanentFailureError } from '../../shared/runtime/outcomes.ts';
import { runWorker } from '../../shared/runtime/run-worker.ts';
import { listDeadLetters } from '../../shared/runtime/queue-status.ts';
import { captureLogger, testConfig, testQueue, waitFor } from '../../shared/runtime/test-support/index.ts';
import { defineWorker } from '../../shared/runtime/worker.ts';
import { createPool } from '../../shared/db/pool.ts';
import { TEST_POSTGRES_URL } from '../servers/ports.ts';

const PASSWORD = 'password-1';

describe('REDIS_URL forms', () => {
  it('parses a server, a cluster and a sentinel URL, and explains a wrong one', () => {
    expect(parseRedisUrl('redis://:pw@10.0.0.1:6379/2')).toEqual({ kind: 'server', url: 'redis://:pw@10.0.0.1:6379/2' });
    expect(parseRedisUrl('rediss+cluster://app:s%40cret@a:7000,b:7001,[::1]')).toEqual({
      kind: 'cluster', nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }, { host: '::1', port: 6379 }],
      options: { username: 'app', password: 's@cret', tls: {} },
    });
    expect(parseRedisUrl('redis+sentinel://:pw@s1,s2:26380/mymaster/3?sentinelPassword=sp')).toEqual({
      kind: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }], name: 'mymaster',
      options: { password: 'pw', db: 3, sentinelPassword: 'sp' },
    });
    for (const [url, reason] of [
      ['http://x', /expected redis:\/\//], ['redis+sentinel://s1:26379', /name the master/], ['redis+cluster://a:7000/1', /only database 0/],
      ['redis+cluster://a:99999', /out of range/], ['redis+sentinel://:secret@s1/m/x', /\/MASTER\/DB/],
    ] as const) {
      expect(() => parseRedisUrl(url)).toThrow(RedisUrlError);
      expect(() => parseRedisUrl(url)).toThrow(reason);
    }
    expect(() => parseRedisUrl('redis+sentinel://:secret@s1/m/x')).not.toThrow(/secret/);
  });

  it('hash-tags each queue prefix on a cluster only', () => {
    expect(queuePrefix({ url: 'redis://h:6379' }, 'garbagecollection')).toBe('quayfleet');
    expect(queuePrefix({ url: 'redis+cluster://h:7000' }, 'garbagecollection')).toBe('{quayfleet:garbagecollection}');
    expect(queuePrefix({ url: 'redis+cluster://h:7000', prefix: '{mine}' }, 'garbagecollection')).toBe('{mine}');
  });
});

/** A `quayfleet all` process on `redisUrl` over a fresh database; returns it with a push token for alice/app. */
async function startFleet(label: string, redisUrl: string, httpPort: number): Promise<{ fleet: FleetProcess; database: TestDatabase; token: string }> {
  const database = await createTestDatabase(label);
  const fleet = await startFleetProcess({ dbUri: database.url, redisUrl, httpPort, metricsPort: httpPort + 1, config: { GARBAGE_COLLECTION_FREQUENCY: 1, PUSH_TEMP_TAG_EXPIRATION_SEC: 10 } });
  await createUser(database.url, 'alice', PASSWORD);
  const token = await pushToken(fleet.base, `127.0.0.1:${httpPort}`, 'alice', PASSWORD, 'alice/app');
  return { fleet, database, token };
}

/** Pushes two blobs and a manifest, deletes the tag, and waits until GC has deleted `expectedBlobs` blobs in all. */
async function pushAndCollect(fleet: FleetProcess, token: string, expectedBlobs: number): Promise<void> {
  const tally = new LoadTally();
  expect(await pushRound(fleet.base, token, 'alice/app', tally), JSON.stringify([...tally.counts])).toBe(true);
  await eventually(`GC deletes ${expectedBlobs} blobs`, async () => (await metricValue(fleet.metricsBase, 'quay_gc_storage_blobs_deleted_total')) >= expectedBlobs || undefined, 90_000);
}

describe('Redis Cluster (3 masters)', { timeout: 300_000 }, () => {
  let cluster: RedisCluster;
  beforeAll(async () => { cluster = await startRedisCluster(); });
  afterAll(async () => { await cluster?.stop(); });

  it('runs the queue runtime: completions, a retry, a dead letter and a schedule, each queue in its own hash slot', async () => {
    const queue = testQueue('clusterqueue', 50);
    const ticks = testQueue('clustertick');
    const settings = { url: cluster.url };
    const producer = createProducer(settings);
    const pool = createPool({ connectionString: TEST_POSTGRES_URL, max: 1 });
    const seen = new Map<number, number>();
    const worker = await runWorker(defineWorker({
      name: 'clusterworker', queue, concurrency: 4,
      handler: async (payload) => {
        const attempt = (seen.get(payload.n) ?? 0) + 1;
        seen.set(payload.n, attempt);
        if (payload.n === 13) throw new PermanentFailureError('thirteen is refused');
        if (payload.n === 7 && attempt === 1) throw new Error('transient');
      },
    }), { config: testConfig(), services: { db: pool }, redis: settings, log: captureLogger().log });
    const ticker = await runWorker(defineWorker({
      name: 'clustertickworker', queue: ticks, concurrency: 1, schedule: [{ id: 'tick', everySeconds: 1, payload: { v: 1 as const, n: 0 } }],
      handler: async () => undefined,
    }), { config: testConfig(), services: { db: pool }, redis: settings, log: captureLogger().log });
    try {
      for (let n = 1; n <= 20; n += 1) await producer.enqueue(queue, { v: 1, n });
      await waitFor(async () => (await producer.queue(queue.name).getCompletedCount()) === 19 || undefined, 60_000);
      expect(seen.get(7)).toBe(2);
      const letters = await listDeadLetters(producer, queue.name);
      expect(letters.map((l) => [l.jobId, l.permanent])).toEqual([[`${queue.name}/13`, true]]);
      await waitFor(async () => (await producer.queue(ticks.name).getCompletedCount()) >= 1 || undefined, 30_000);

      // The two queues' keys each share one slot, and the slots differ.
      const redis = connectRedis(settings);
      try {
        const slots = await Promise.all([queue.name, ticks.name].map((name) => redis.call('CLUSTER', 'KEYSLOT', `${queuePrefix(settings, name)}:${name}:wait`)));
        expect(slots[0]).not.toBe(slots[1]);
      } finally {
        redis.disconnect();
      }
    } finally {
      if (!worker.disabled) await worker.stop(5000);
      if (!ticker.disabled) await ticker.stop(5000);
      for (const name of [queue.name, ticks.name]) await producer.queue(name).obliterate({ force: true });
      await producer.close();
      await pool.end();
    }
  });

  it('takes a push and collects its deleted tag in a `quayfleet all` process', async () => {
    const { fleet, database, token } = await startFleet('cluster', cluster.url, 21830);
    try {
      await pushAndCollect(fleet, token, 2);
      expect(fleet.output()).not.toMatch(/CROSSSLOT/);
    } finally {
      await fleet.stop();
      await database.drop();
    }
  });
});

describe('Redis Sentinel (master, replica, 3 sentinels)', { timeout: 300_000 }, () => {
  let sentinel: RedisSentinelSetup;
  beforeAll(async () => { sentinel = await startRedisSentinel(); });
  afterAll(async () => { await sentinel?.stop(); });

  it('takes pushes and collects them before and after the master fails over', async () => {
    const { fleet, database, token } = await startFleet('sentinel', sentinel.url, 21832);
    try {
      await pushAndCollect(fleet, token, 2);
      const before = await sentinel.masterPort();
      const after = await sentinel.killMasterAndAwaitFailover();
      expect(after).not.toBe(before);
      await pushAndCollect(fleet, token, 4);
      expect(fleet.alive(), fleet.output()).toBe(true);
    } finally {
      await fleet.stop();
      await database.drop();
    }
  });
});
