/**
 * Real Redis topologies for tests, from Debian's redis-server (the one binary serves as a cluster
 * node, a replica and a sentinel): a 3-master Redis Cluster, and a master + replica watched by
 * three sentinels. Each node is a child process in a temp directory; `stop()` kills them all.
 * Ports are h-ops's (21810–21829); a leftover node of an earlier, killed run is shut down first.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

const run = promisify(execFile);
const REDIS_SERVER = 'redis-server';

/** Ports of the 3 cluster masters. */
export const CLUSTER_PORTS = [21810, 21811, 21812] as const;
/** Ports of the Sentinel setup: master, replica, then the three sentinels. */
export const SENTINEL_PORTS = { master: 21820, replica: 21821, sentinels: [21825, 21826, 21827] } as const;
/** The master's name in the sentinels' configuration. */
export const SENTINEL_MASTER = 'qfmaster';

interface Node { readonly port: number; readonly child: ChildProcess }

export interface RedisCluster {
  /** `redis+cluster://` URL naming every master as a seed. */
  readonly url: string;
  stop(): Promise<void>;
}

export interface RedisSentinelSetup {
  /** `redis+sentinel://` URL naming the three sentinels and the master. */
  readonly url: string;
  /** The port of the node the sentinels currently call master. */
  masterPort(): Promise<number>;
  /** SIGKILLs the current master; resolves with the port of the replica the sentinels promoted. */
  killMasterAndAwaitFailover(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/** Starts three empty cluster-mode nodes, joins them as masters (no replicas), and waits for `cluster_state:ok`. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-redis-cluster-'));
  const nodes: Node[] = [];
  try {
    for (const port of CLUSTER_PORTS) {
      nodes.push(await startNode(dir, port, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000']));
    }
    await run('redis-cli', ['--cluster', 'create', ...CLUSTER_PORTS.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    await waitUntil(async () => {
      const states = await Promise.all(CLUSTER_PORTS.map((port) => command(port, ['CLUSTER', 'INFO'])));
      return states.every((info) => String(info).includes('cluster_state:ok'));
    }, 30_000, 'the cluster to report cluster_state:ok');
  } catch (error) {
    await stopNodes(nodes, dir);
    throw error;
  }
  return {
    url: `redis+cluster://${CLUSTER_PORTS.map((p) => `127.0.0.1:${p}`).join(',')}`,
    stop: () => stopNodes(nodes, dir),
  };
}

/** Starts a master, a replica of it and three sentinels (quorum 2, master down after 1 s). */
export async function startRedisSentinel(): Promise<RedisSentinelSetup> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-redis-sentinel-'));
  const nodes: Node[] = [];
  const { master, replica, sentinels } = SENTINEL_PORTS;
  try {
    nodes.push(await startNode(dir, master, []));
    nodes.push(await startNode(dir, replica, ['--replicaof', '127.0.0.1', String(master)]));
    await waitUntil(async () => String(await command(replica, ['INFO', 'replication'])).includes('master_link_status:up'), 30_000, 'the replica to sync');
    for (const port of sentinels) {
      const conf = path.join(dir, `sentinel-${port}.conf`);
      fs.writeFileSync(conf, [
        `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
        `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${master} 2`,
        `sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`,
        `sentinel failover-timeout ${SENTINEL_MASTER} 10000`,
        `sentinel parallel-syncs ${SENTINEL_MASTER} 1`, '',
      ].join('\n'));
      nodes.push(await startNode(dir, port, [], conf, true));
    }
    // Every sentinel must know the replica and the other sentinels before a failover can be agreed.
    await waitUntil(async () => {
      const views = await Promise.all(sentinels.map((port) => command(port, ['SENTINEL', 'MASTER', SENTINEL_MASTER])));
      return views.every((view) => {
        const fields = toRecord(view as string[]);
        return Number(fields['num-slaves']) >= 1 && Number(fields['num-other-sentinels']) >= 2;
      });
    }, 30_000, 'the sentinels to discover the replica and each other');
  } catch (error) {
    await stopNodes(nodes, dir);
    throw error;
  }

  const masterPort = async (): Promise<number> => {
    const address = await command(sentinels[0], ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER]) as string[];
    return Number(address[1]);
  };
  return {
    url: `redis+sentinel://${sentinels.map((p) => `127.0.0.1:${p}`).join(',')}/${SENTINEL_MASTER}`,
    masterPort,
    async killMasterAndAwaitFailover(timeoutMs = 60_000) {
      const before = await masterPort();
      const node = nodes.find((n) => n.port === before)!;
      node.child.kill('SIGKILL');
      let after = before;
      await waitUntil(async () => {
        after = await masterPort();
        if (after === before) return false;
        return String(await command(after, ['INFO', 'replication'])).includes('role:master');
      }, timeoutMs, 'the sentinels to promote the replica');
      return after;
    },
    stop: () => stopNodes(nodes, dir),
  };
}

async function startNode(dir: string, port: number, args: string[], configFile?: string, sentinel = false): Promise<Node> {
  await command(port, ['SHUTDOWN', 'NOSAVE']).catch(() => undefined); // a leftover of a killed run
  const argv = [
    ...(configFile ? [configFile] : []),
    ...(sentinel ? ['--sentinel'] : ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]),
    ...args,
  ];
  const child = spawn(REDIS_SERVER, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-4000); });
  child.stderr!.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-4000); });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`redis-server on ${port} exited (${code}):\n${output}`))));
  exited.catch(() => undefined);
  await Promise.race([waitUntil(async () => (await command(port, ['PING'])) === 'PONG', 20_000, `redis-server on ${port}`), exited]);
  return { port, child };
}

async function stopNodes(nodes: Node[], dir: string): Promise<void> {
  await Promise.all(nodes.map((node) => new Promise<void>((resolve) => {
    if (node.child.exitCode !== null || node.child.signalCode !== null) return resolve();
    node.child.once('exit', () => resolve());
    node.child.kill('SIGKILL');
  })));
  fs.rmSync(dir, { recursive: true, force: true });
}

/** One command on a fresh connection to 127.0.0.1:`port`; rejects when nothing answers. */
async function command(port: number, argv: string[]): Promise<unknown> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await redis.call(argv[0]!, ...argv.slice(1));
  } finally {
    redis.disconnect();
  }
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function toRecord(pairs: string[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) record[pairs[i]!] = pairs[i + 1]!;
  return record;
}

/** A lone redis-server on `port` (a fleet with the default queue prefix gets a server of its own). */
export async function startRedisServer(port: number): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-redis-'));
  const node = await startNode(dir, port, []);
  return { url: `redis://127.0.0.1:${port}`, stop: () => stopNodes([node], dir) };
}
