/**
 * Quay's queue gauges (`quay_queue_items_available`, `_locked`, `_available_unlocked`, label
 * `queue_name`) and quayfleet's own (`quayfleet_queue_oldest_waiting_age_seconds`,
 * `quayfleet_queue_dead_letter_jobs`), computed from BullMQ when Prometheus scrapes, for every
 * queue in the table. Quay refreshed them every 5 minutes per worker; here they are never staler
 * than one scrape. The BullMQ-to-Quay mapping is documented in queue-status.ts.
 */
import type { Gauge } from 'prom-client';
import { ALL_QUEUE_NAMES } from '../../queues/index.ts';
import { client, metric } from '../metrics/index.ts';
import { queueStatus, type QueueSource, type QueueStatus } from './queue-status.ts';

/** One scrape reads every gauge; a snapshot this young is reused instead of asking Redis again. */
const SNAPSHOT_TTL_MS = 1000;
/** A scrape never waits longer than this on Redis; the gauges then keep their last values. */
const STATUS_TIMEOUT_MS = 5000;

let current: { source: QueueSource; names: readonly string[] } | undefined;
let snapshot: { at: number; status: Promise<QueueStatus[] | undefined> } | undefined;

function latestStatus(): Promise<QueueStatus[] | undefined> {
  if (!current) return Promise.resolve(undefined);
  const now = Date.now();
  if (snapshot && now - snapshot.at < SNAPSHOT_TTL_MS) return snapshot.status;
  const { source, names } = current;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), STATUS_TIMEOUT_MS); });
  const status = Promise.race([queueStatus(source, names, now), timeout])
    .catch(() => undefined)
    .finally(() => clearTimeout(timer));
  snapshot = { at: now, status };
  return status;
}

function queueGauge(name: string, help: string, pick: (status: QueueStatus) => number | null): Gauge<'queue_name'> {
  return metric(name, () => new client.Gauge({
    name,
    help,
    labelNames: ['queue_name'],
    async collect() {
      const status = await latestStatus();
      for (const queue of status ?? []) {
        const value = pick(queue);
        if (value === null) this.remove({ queue_name: queue.queueName });
        else this.set({ queue_name: queue.queueName }, value);
      }
    },
  }));
}

// Declared at import so the names exist (and stay empty) even before registerQueueGauges.
queueGauge('quay_queue_items_available', 'number of queue items that have not expired', (s) => s.available);
queueGauge('quay_queue_items_locked', 'number of queue items that have been acquired', (s) => s.locked);
queueGauge('quay_queue_items_available_unlocked', 'number of queue items that have not expired and are not locked', (s) => s.availableUnlocked);
queueGauge('quayfleet_queue_oldest_waiting_age_seconds', 'age in seconds of the oldest job waiting to run', (s) => s.oldestWaitingAgeSeconds);
queueGauge('quayfleet_queue_dead_letter_jobs', 'number of dead-lettered (failed, kept) jobs', (s) => s.failed);

/**
 * Makes the queue gauges report the queues `names` (every queue by default) read through
 * `source`. Returns a function that stops reporting. Only one source reports at a time.
 */
export function registerQueueGauges(source: QueueSource, names: readonly string[] = ALL_QUEUE_NAMES): () => void {
  const registration = { source, names };
  current = registration;
  snapshot = undefined;
  return () => {
    if (current === registration) current = undefined;
    snapshot = undefined;
  };
}
