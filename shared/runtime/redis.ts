/**
 * Where the queues live: one Redis URL and one key prefix. Every BullMQ object and every Redis
 * connection in the fleet is built from these settings, so tests isolate themselves by prefix
 * alone, and one URL picks a single server, a Redis Cluster or a Sentinel-managed master:
 *
 * | form | meaning |
 * |---|---|
 * | `redis://[user:password@]host:port[/db]` | one server (`rediss://`: TLS) |
 * | `redis+cluster://[user:password@]host:port[,host:port...]` | a Redis Cluster; the nodes are seeds, the rest is discovered (`rediss+cluster://`: TLS) |
 * | `redis+sentinel://[user:password@]host:port[,host:port...]/MASTER[/db][?sentinelPassword=...]` | the master `MASTER` as Sentinel names it; the credentials are the master's (`rediss+sentinel://`: TLS to the master and replicas) |
 *
 * On a Cluster, BullMQ's Lua scripts touch several keys of one queue at once, and Redis refuses a
 * script whose keys live in different hash slots. Each queue's prefix therefore carries a hash tag
 * of its own (`{quayfleet:garbagecollection}`): one queue's keys share a slot, and different queues
 * spread over the masters.
 */
import type { ConnectionOptions } from 'bullmq';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/** Connection settings of the queue transport. */
export interface RedisSettings {
  /** A URL in one of the forms above. */
  readonly url: string;
  /** BullMQ key prefix; every queue key starts with it. Default `quayfleet`. */
  readonly prefix?: string;
}

/** The BullMQ key prefix used when settings give none. */
export const DEFAULT_QUEUE_PREFIX = 'quayfleet';

/** A REDIS_URL that none of the forms above describes. */
export class RedisUrlError extends Error {
  constructor(readonly url: string, reason: string) {
    super(`invalid Redis URL "${redact(url)}": ${reason}`);
    this.name = 'RedisUrlError';
  }
}

interface HostPort { readonly host: string; readonly port: number }

/** What a Redis URL names. */
export type RedisTarget =
  | { readonly kind: 'server'; readonly url: string }
  | { readonly kind: 'cluster'; readonly nodes: HostPort[]; readonly options: RedisOptions }
  | { readonly kind: 'sentinel'; readonly sentinels: HostPort[]; readonly name: string; readonly options: RedisOptions };

const MULTI_HOST = /^(rediss?)\+(cluster|sentinel):\/\/(?:([^@/]*)@)?([^/?#]+)(\/[^?#]*)?(?:\?([^#]*))?$/;

/** Parses a Redis URL (see the table above); throws RedisUrlError. */
export function parseRedisUrl(url: string): RedisTarget {
  if (/^rediss?:\/\//.test(url)) return { kind: 'server', url };
  const match = MULTI_HOST.exec(url);
  if (!match) throw new RedisUrlError(url, 'expected redis://, rediss://, redis+cluster://, rediss+cluster://, redis+sentinel:// or rediss+sentinel://');
  const [, scheme, kind, userinfo, hostList, pathPart, query] = match;
  const hosts = hostList!.split(',').map((entry) => hostPort(url, entry, kind === 'sentinel' ? 26379 : 6379));
  const params = new URLSearchParams(query ?? '');
  const options: RedisOptions = { ...credentials(userinfo), ...(scheme === 'rediss' ? { tls: {} } : {}) };
  const segments = (pathPart ?? '').split('/').filter(Boolean).map(decodeURIComponent);
  if (kind === 'cluster') {
    if (segments.length > 0) throw new RedisUrlError(url, 'a Redis Cluster has only database 0; remove the path');
    return { kind: 'cluster', nodes: hosts, options };
  }
  const [name, db, ...extra] = segments;
  if (!name) throw new RedisUrlError(url, 'name the master after the hosts: redis+sentinel://host:26379/MASTER');
  if (extra.length > 0 || (db !== undefined && !/^\d+$/.test(db))) throw new RedisUrlError(url, 'the path is /MASTER or /MASTER/DB (a number)');
  const sentinelPassword = params.get('sentinelPassword');
  return {
    kind: 'sentinel', sentinels: hosts, name,
    options: { ...options, ...(db ? { db: Number(db) } : {}), ...(sentinelPassword ? { sentinelPassword } : {}), ...(scheme === 'rediss' ? { enableTLSForSentinelMode: true } : {}) },
  };
}

/**
 * A new connection to the target of `settings` (lazy: it connects on first use). `options` apply
 * to every node's connection. The caller closes it (`quit()` or `disconnect()`).
 */
export function connectRedis(settings: RedisSettings, options: RedisOptions = {}): Redis | Cluster {
  const target = parseRedisUrl(settings.url);
  switch (target.kind) {
    case 'server': return new Redis(target.url, { lazyConnect: true, ...options });
    case 'sentinel': return new Redis({ ...target.options, sentinels: target.sentinels, name: target.name, lazyConnect: true, ...options });
    case 'cluster': {
      const clusterOptions: ClusterOptions = {
        lazyConnect: true,
        redisOptions: { ...target.options, ...options },
        // Commands wait for the cluster to settle (a failover, a resharding) instead of failing.
        ...(options.maxRetriesPerRequest === null ? { clusterRetryStrategy: (times: number) => Math.min(100 * times, 2000) } : {}),
      };
      return new Cluster(target.nodes, clusterOptions);
    }
  }
}

/** True when `settings` name a Redis Cluster. */
export function isCluster(settings: RedisSettings): boolean {
  return parseRedisUrl(settings.url).kind === 'cluster';
}

/** The BullMQ prefix of `queueName`: the settings' prefix, hash-tagged per queue on a Cluster. */
export function queuePrefix(settings: RedisSettings, queueName: string): string {
  const prefix = settings.prefix ?? DEFAULT_QUEUE_PREFIX;
  if (!isCluster(settings) || /\{[^}]+\}/.test(prefix)) return prefix;
  return `{${prefix}:${queueName}}`;
}

/** BullMQ options for one queue's Worker; `release` closes what they opened (after the Worker closed). */
export interface BullOptions {
  readonly connection: ConnectionOptions;
  readonly prefix: string;
  release(): void;
}

/**
 * BullMQ connection and prefix options for `queueName`. `maxRetriesPerRequest: null` makes
 * commands wait out a Redis restart or failover instead of failing, which BullMQ requires of
 * workers. A Cluster or Sentinel target is handed to BullMQ as a client (BullMQ duplicates it
 * for its blocking connection), which `release` closes; a single server is given as options.
 */
export function bullOptions(settings: RedisSettings, queueName: string): BullOptions {
  const prefix = queuePrefix(settings, queueName);
  if (parseRedisUrl(settings.url).kind === 'server') return { connection: { url: settings.url, maxRetriesPerRequest: null }, prefix, release: () => undefined };
  const client = connectRedis(settings, { maxRetriesPerRequest: null });
  return { connection: client, prefix, release: () => client.disconnect() };
}

function hostPort(url: string, entry: string, defaultPort: number): HostPort {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d+))?$/.exec(entry.trim());
  if (!match) throw new RedisUrlError(url, `"${entry}" is not host:port`);
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (port < 1 || port > 65535) throw new RedisUrlError(url, `port ${match[2]} is out of range`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

function credentials(userinfo: string | undefined): Pick<RedisOptions, 'username' | 'password'> {
  if (!userinfo) return {};
  const colon = userinfo.indexOf(':');
  const username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
  const password = colon < 0 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
  return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
