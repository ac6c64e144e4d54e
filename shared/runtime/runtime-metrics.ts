/**
 * The metrics the runtime records for every worker and queue, declared once. Quay's names where
 * Quay has the metric (`quay_queue_item_*`, `quay_worker_operation_*`), `quayfleet_*` for what
 * Quay lacks. The per-job ones are buffered (hot-metrics.ts) so the job hot path does no label hashing.
 */
import { fastHistogram, flushBufferedCounters } from './hot-metrics.ts';
import { client, metric } from '../metrics/index.ts';

/** Job runs by outcome (see outcomes.ts); fed through BufferedCounters, flushed on scrape. */
export const workerJobsTotal = metric('quayfleet_worker_jobs_total', () => new client.Counter({
  name: 'quayfleet_worker_jobs_total',
  help: 'number of job runs by worker, queue and outcome',
  labelNames: ['worker', 'queue_name', 'outcome'],
  collect() { flushBufferedCounters(this); },
}));

/** Wall time of one job run, whatever its outcome. */
export const workerJobDuration = fastHistogram(
  'quayfleet_worker_job_duration_seconds',
  'duration of one job run in seconds',
  ['worker', 'queue_name'],
  [0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 10800],
);

/** Quay's per-operation histogram, recorded for scheduled (periodic) jobs; same buckets as Quay. */
export const workerOperationDuration = metric('quay_worker_operation_duration_seconds', () => new client.Histogram({
  name: 'quay_worker_operation_duration_seconds',
  help: 'duration of a worker operation in seconds',
  labelNames: ['worker', 'operation'],
  buckets: [60, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400],
}));

/** Quay's per-operation in-progress gauge, for scheduled jobs. */
export const workerOperationInProgress = metric('quay_worker_operation_in_progress', () => new client.Gauge({
  name: 'quay_worker_operation_in_progress',
  help: 'whether a worker operation is running',
  labelNames: ['worker', 'operation'],
}));

/** Quay's put counter: every job published to a queue (duplicates included, as in Quay). */
export const queueItemPuts = metric('quay_queue_item_puts_total', () => new client.Counter({
  name: 'quay_queue_item_puts_total',
  help: 'number of items that have been added to the queue',
  labelNames: ['queue_name'],
}));

/**
 * Quay's get counter; quayfleet records `availability="acquired"` for every job a worker starts,
 * through BufferedCounters flushed on scrape.
 */
export const queueItemGets = metric('quay_queue_item_gets_total', () => new client.Counter({
  name: 'quay_queue_item_gets_total',
  help: 'number of times get() has been called on queue',
  labelNames: ['queue_name', 'availability'],
  collect() { flushBufferedCounters(this); },
}));
