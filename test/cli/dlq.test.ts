/**
 * `quayfleet dlq` as an operator runs it: a real child process against the real Redis. The
 * commands use the fleet's queue prefix, so this file works in a Redis database of its own
 * (a random index of the shared server) and obliterates its queue afterwards.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repositorygc } from '../../queues/index.ts';
import { createProducer, type Producer } from '../../shared/runtime/producer.ts';
import { DEFAULT_QUEUE_PREFIX } from '../../shared/runtime/redis.ts';
import { waitFor } from '../../shared/runtime/test-support/index.ts';
import { REDIS_URL } from '../helpers/redis.ts';

const CLI = path.resolve(import.meta.dirname, '../../bin/quayfleet.js');
const redisUrl = `${REDIS_URL.replace(/\/\d*$/, '')}/${8 + Math.floor(Math.random() * 8)}`;

function run(args: string[], env: Record<string, string> = { REDIS_URL: redisUrl }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

const purge = (repositoryId: number) => ({ v: 1 as const, repositoryId, markerId: repositoryId, originalName: `repo${repositoryId}`, namespace: 'acme' });

describe('quayfleet dlq', { timeout: 180_000 }, () => {
  let producer: Producer;
  beforeAll(async () => {
    producer = createProducer({ url: redisUrl, prefix: DEFAULT_QUEUE_PREFIX });
    await producer.queue(repositorygc.name).obliterate({ force: true });
    for (const id of [1, 2, 3]) await producer.enqueue(repositorygc, purge(id));
    const worker = new Worker(repositorygc.name, async () => { throw new UnrecoverableError('repository row is gone'); }, {
      connection: { url: redisUrl, maxRetriesPerRequest: null }, prefix: DEFAULT_QUEUE_PREFIX,
    });
    try {
      await waitFor(async () => (await producer.queue(repositorygc.name).getFailedCount()) === 3 || undefined);
    } finally {
      await worker.close();
    }
  });
  afterAll(async () => {
    await producer.queue(repositorygc.name).obliterate({ force: true });
    await producer.close();
  });

  const stateOf = async (jobId: string) => {
    const job = await producer.queue(repositorygc.name).getJob(jobId);
    return { state: await job?.getState(), attemptsMade: job?.attemptsMade };
  };

  it('lists the dead letters of every queue, and of one as JSON', async () => {
    const all = await run(['dlq', 'list']);
    expect(all.status).toBe(0);
    for (const id of [1, 2, 3]) expect(all.stdout).toMatch(new RegExp(`^repositorygc  repositorygc/${id}  \\S+  permanent  repository row is gone$`, 'm'));
    const json = await run(['dlq', 'list', 'repositorygc', '--json', '--limit', '2']);
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toHaveLength(2);
  });

  it('replays one dead letter under its held id, and refuses to replay it twice', async () => {
    const replay = await run(['dlq', 'replay', 'repositorygc', 'repositorygc/1']);
    expect(replay).toMatchObject({ status: 0, stdout: 'replayed repositorygc repositorygc/1\n' });
    expect(await stateOf('repositorygc/1')).toEqual({ state: 'waiting', attemptsMade: 0 });
    const again = await run(['dlq', 'replay', 'repositorygc', 'repositorygc/1']);
    expect(again.status).toBe(1);
    expect(again.stderr).toBe('quayfleet: job repositorygc/1 in repositorygc is not dead-lettered (it is waiting)\n');
    const missing = await run(['dlq', 'drop', 'repositorygc', 'repositorygc/404']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no job repositorygc/404 in repositorygc');
  });

  it('drops one, then all the rest', async () => {
    expect(await run(['dlq', 'drop', 'repositorygc', 'repositorygc/2'])).toMatchObject({ status: 0, stdout: 'dropped repositorygc repositorygc/2\n' });
    expect(await stateOf('repositorygc/2')).toEqual({ state: undefined, attemptsMade: undefined });
    const all = await run(['dlq', 'drop', 'repositorygc', '--all']);
    expect(all).toMatchObject({ status: 0, stdout: 'dropped 1 dead letter of repositorygc\n' });
    // Not a terminal: plain progress lines on stderr, the result alone on stdout.
    expect(all.stderr).toContain('dlq drop repositorygc: 0/1\ndlq drop repositorygc: 1/1\n');
    expect(await run(['dlq', 'list', 'repositorygc'])).toMatchObject({ status: 0, stdout: 'no dead letters\n' });
    // The replayed job is untouched: it is no dead letter.
    expect((await stateOf('repositorygc/1')).state).toBe('waiting');
  });

  it('refuses bad input with exit 2 and a clear line', async () => {
    const cases: [string[], string][] = [
      [['dlq', 'list', 'nosuchqueue'], 'unknown queue "nosuchqueue"; queues: garbagecollection,'],
      [['dlq', 'replay', 'dockerfilebuild', '--all'], 'unknown queue "dockerfilebuild"'],
      [['dlq', 'replay', 'repositorygc'], 'dlq replay: give a job id or --all (not both)'],
      [['dlq', 'drop', 'repositorygc', 'repositorygc/1', '--all'], 'dlq drop: give a job id or --all (not both)'],
      [['dlq', 'list', '--limit', '0'], '--limit must be a positive whole number, got "0"'],
    ];
    const results = await Promise.all(cases.map(([args]) => run(args)));
    results.forEach((result, i) => {
      expect(result.status, cases[i]![0].join(' ')).toBe(2);
      expect(result.stderr).toContain(cases[i]![1]);
    });
  });

  it('without REDIS_URL and no running fleet, says what to set', async () => {
    const free = net.createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise((resolve) => free.close(resolve));
    const result = await run(['dlq', 'list'], { QUAYFLEET_EMBEDDED_REDIS_PORT: String(port) });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('BUILDLOGS_REDIS is required (or set REDIS_URL=redis://HOST:6379)');
  });
});
