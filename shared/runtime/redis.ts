/**
 * Where the queues live: one Redis URL and one key prefix. Every BullMQ object in the fleet is
 * built from these settings, so tests isolate themselves by prefix alone.
 */
import type { ConnectionOptions } from 'bullmq';

/** Connection settings of the queue transport. */
export interface RedisSettings {
  /** `redis://` or `rediss://` URL. */
  readonly url: string;
  /** BullMQ key prefix; every queue key starts with it. Default `quayfleet`. */
  readonly prefix?: string;
}

/** The BullMQ key prefix used when settings give none. */
export const DEFAULT_QUEUE_PREFIX = 'quayfleet';

/**
 * BullMQ connection and prefix options for these settings. `maxRetriesPerRequest: null` makes
 * commands wait out a Redis restart instead of failing, which BullMQ requires of workers.
 */
export function bullOptions(settings: RedisSettings): { connection: ConnectionOptions; prefix: string } {
  return {
    connection: { url: settings.url, maxRetriesPerRequest: null },
    prefix: settings.prefix ?? DEFAULT_QUEUE_PREFIX,
  };
}
