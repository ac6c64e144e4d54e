import { describe, expect, it } from 'vitest';
import { BufferedCounter, fastHistogram, flushBufferedCounters } from './hot-metrics.ts';
import { client, registry } from '../metrics/index.ts';

describe('hot-path metrics', () => {
  it("export a FastHistogram exactly as prom-client's Histogram exports the same observations", async () => {
    const buckets = [0.01, 0.1, 1, 10];
    const fast = fastHistogram('test_fast_histogram_seconds', 'help text', ['worker', 'queue_name'], buckets);
    const reference = new client.Histogram({ name: 'test_reference_histogram_seconds', help: 'help text', labelNames: ['worker', 'queue_name'], buckets, registers: [] });
    const series = [fast.child({ worker: 'gcworker', queue_name: 'garbagecollection' }), fast.child({ worker: 'gcworker', queue_name: 'repositorygc' })];
    [0.005, 0.01, 0.5, 3, 12, 0.2].forEach((value, i) => {
      series[i % 2]!.observe(value);
      reference.observe({ worker: 'gcworker', queue_name: i % 2 ? 'repositorygc' : 'garbagecollection' }, value);
    });
    expect(fast.child({ worker: 'gcworker', queue_name: 'garbagecollection' })).toBe(series[0]);
    const exported = (await registry.getSingleMetricAsString('test_fast_histogram_seconds')).replaceAll('test_fast_histogram', 'x');
    const referenceRegistry = new client.Registry();
    referenceRegistry.registerMetric(reference);
    const expected = (await referenceRegistry.metrics()).replaceAll('test_reference_histogram', 'x').trimEnd();
    expect(exported).toBe(expected);
  });

  it('add buffered counts to their prom-client counter when it is read', async () => {
    const counter = new client.Counter({ name: 'test_buffered_total', help: 'h', labelNames: ['outcome'], registers: [], collect() { flushBufferedCounters(this); } });
    const done = new BufferedCounter(counter, { outcome: 'done' });
    done.inc();
    done.inc();
    expect((await counter.get()).values).toEqual([{ labels: { outcome: 'done' }, value: 2 }]);
    done.inc();
    done.release();
    done.inc(); // released: no longer flushed
    expect((await counter.get()).values).toEqual([{ labels: { outcome: 'done' }, value: 3 }]);
  });
});
