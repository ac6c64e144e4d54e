import { UnrecoverableError, Worker, type Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { repositorygc } from '../../queues/index.ts';
import { countOutboxRows, enqueueInTransaction, enqueueManyInTransaction } from '../db/outbox.ts';
import { withTransaction } from '../db/pool.ts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { REDIS_URL, uniquePrefix } from '../../test/helpers/redis.ts';
import { startOutboxRelay, type OutboxRelay } from './outbox-relay.ts';
import { createProducer, type Producer } from './producer.ts';
import { captureLogger, sleep, waitFor } from './test-support/index.ts';

let db: TestDatabase;
let producer: Producer;
let relays: OutboxRelay[];

const purge = (repositoryId: number) => ({ v: 1 as const, repositoryId, markerId: repositoryId, originalName: `repo${repositoryId}`, namespace: 'acme' });

beforeAll(async () => { db = await createTestDatabase('relay'); });
afterAll(async () => { await db.drop(); });
beforeEach(async () => {
  producer = createProducer({ url: REDIS_URL, prefix: uniquePrefix('relay') });
  relays = [];
  await db.pool.query('DELETE FROM outbox');
});
afterEach(async () => {
  for (const relay of relays) await relay.stop();
  await producer.queue(repositorygc.name).obliterate({ force: true });
  await producer.close();
});

async function startRelay(options: { producer?: Producer; safetyIntervalMs?: number; batchSize?: number } = {}): Promise<OutboxRelay> {
  const relay = await startOutboxRelay({
    db: db.pool, connectionString: db.url, producer: options.producer ?? producer, log: captureLogger().log,
    safetyIntervalMs: options.safetyIntervalMs ?? 60_000, batchSize: options.batchSize,
  });
  relays.push(relay);
  return relay;
}

async function commitPurges(ids: number[]): Promise<void> {
  await withTransaction(db.pool, (tx) => enqueueManyInTransaction(tx, repositorygc, ids.map(purge)));
}

async function jobCount(): Promise<number> {
  const counts = await producer.queue(repositorygc.name).getJobCounts('waiting', 'delayed');
  return (counts.waiting ?? 0) + (counts.delayed ?? 0);
}

/** A producer whose publishing succeeds in Redis and then "crashes" before the relay can commit. */
function crashingAfterPublish(real: Producer): Producer {
  return {
    ...real,
    queue(name: string): Queue {
      const queue = real.queue(name);
      return new Proxy(queue, {
        get(target, property, receiver) {
          if (property !== 'addBulk') return Reflect.get(target, property, receiver) as unknown;
          return async (...args: Parameters<Queue['addBulk']>) => {
            await target.addBulk(...args);
            throw new Error('process died after publishing');
          };
        },
      });
    },
  };
}

describe('outbox relay', () => {
  it('publishes rows committed while no relay ran, each exactly once, even after a crash between publish and delete', async () => {
    await commitPurges(Array.from({ length: 120 }, (_, i) => i + 1));
    const crashed = await startRelay({ producer: crashingAfterPublish(producer), batchSize: 50 });
    await waitFor(async () => (await jobCount()) >= 50);
    await crashed.stop();
    expect(crashed.published).toBe(0);
    expect(await countOutboxRows(db.pool)).toBe(120); // the crash rolled the delete back

    const relay = await startRelay({ batchSize: 50 });
    await waitFor(async () => (await countOutboxRows(db.pool)) === 0);
    expect(relay.published).toBe(120);
    expect(await jobCount()).toBe(120);
    const job = await producer.queue(repositorygc.name).getJob('repositorygc/7');
    expect(job?.data).toEqual(purge(7));
    expect(job?.opts.attempts).toBe(5);
  });

  it('publishes each row once with two relays racing over concurrent producers', async () => {
    const a = await startRelay({ batchSize: 20 });
    const b = await startRelay({ batchSize: 20 });
    await Promise.all(Array.from({ length: 40 }, (_, t) => commitPurges(Array.from({ length: 10 }, (_, i) => 1000 + t * 10 + i))));
    await waitFor(async () => (await countOutboxRows(db.pool)) === 0);
    await a.drain();
    await b.drain();
    expect(a.published + b.published).toBe(400);
    expect(await jobCount()).toBe(400);
  });

  it('publishes within milliseconds of the commit, by NOTIFY, and delays jobs to their run_at', async () => {
    await startRelay({ safetyIntervalMs: 60_000 });
    await sleep(100);
    const committed = Date.now();
    await withTransaction(db.pool, (tx) => enqueueInTransaction(tx, repositorygc, purge(1)));
    await waitFor(() => producer.queue(repositorygc.name).getJob('repositorygc/1'), 2000, 5);
    expect(Date.now() - committed).toBeLessThan(1000); // typically a few ms; generous for a loaded machine

    await withTransaction(db.pool, (tx) => enqueueInTransaction(tx, repositorygc, purge(2), { runAt: new Date(Date.now() + 3_600_000) }));
    const delayed = await waitFor(() => producer.queue(repositorygc.name).getJob('repositorygc/2'), 2000, 5);
    expect(await delayed.getState()).toBe('delayed');
    expect(delayed.opts.delay).toBeGreaterThan(3_590_000);
  });

  it('reconnects its LISTEN connection after losing it', async () => {
    await startRelay({ safetyIntervalMs: 60_000 });
    await db.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE application_name = 'quayfleet-outbox-relay' AND datname = current_database()`);
    await sleep(300);
    await withTransaction(db.pool, (tx) => enqueueInTransaction(tx, repositorygc, purge(3)));
    await waitFor(() => producer.queue(repositorygc.name).getJob('repositorygc/3'), 5000);
    // The job is published before its row's delete commits.
    await waitFor(async () => (await countOutboxRows(db.pool)) === 0, 5000);
  });

  it('replaces a dead-lettered job when a committed change asks for the same work again', async () => {
    const relay = await startRelay();
    await commitPurges([7]);
    await relay.drain();
    const worker = new Worker(repositorygc.name, async () => { throw new UnrecoverableError('purge failed for good'); }, {
      connection: { url: REDIS_URL, maxRetriesPerRequest: null }, prefix: producer.queue(repositorygc.name).opts.prefix,
    });
    try {
      await waitFor(async () => (await producer.queue(repositorygc.name).getJobState('repositorygc/7')) === 'failed' || undefined);
    } finally {
      await worker.close();
    }
    await commitPurges([7]);
    // The NOTIFY may start the publishing pass before drain() does: wait for the job, not the call.
    await waitFor(async () => (await producer.queue(repositorygc.name).getJobState('repositorygc/7')) === 'waiting' || undefined);
    expect((await producer.queue(repositorygc.name).getJob('repositorygc/7'))?.attemptsMade).toBe(0);
    await waitFor(async () => (await countOutboxRows(db.pool)) === 0 || undefined);
  });
});
