import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { registry } from '../metrics/index.ts';
import { createObjectStore } from './drivers/index.ts';
import { StorageError } from './errors.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'quayfleet-metrics-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function value(name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`${name} is not registered`);
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

async function counters(): Promise<[number, number, number]> {
  return [
    await value('quay_multipart_uploads_started_total'),
    await value('quay_multipart_uploads_completed_total'),
    await value('quay_multipart_uploads_aborted_total'),
  ];
}

describe('instrumented store', () => {
  const store = createObjectStore('LocalStorage', { storage_path: root });

  it('counts multipart uploads started, completed only once confirmed, and aborted', async () => {
    const [started, completed, aborted] = await counters();
    const done = await store.createMultipart('m/done');
    await done.writePart(1, Buffer.from('x'), 1);
    await done.complete();
    const empty = await store.createMultipart('m/empty');
    await expect(empty.complete()).rejects.toThrow('needs at least one part');
    await empty.abort();
    const stale = await store.createMultipart('m/stale');
    for await (const upload of store.listMultipartUploads('m/')) await store.abortMultipartUpload(upload);
    expect(await counters()).toEqual([started + 3, completed + 1, aborted + 2]);
    expect(stale.key).toBe('m/stale');
    await store.delete('m/done');
  });

  it('times operations per driver and operation with Quay-compatible help texts', async () => {
    await store.put('timed', Buffer.from('t'));
    await store.delete('timed');
    const histogram = await registry.getSingleMetric('quayfleet_storage_operation_duration_seconds')!.get();
    const counts = histogram.values.filter((v) => (v as { metricName?: string }).metricName === 'quayfleet_storage_operation_duration_seconds_count');
    expect(counts.find((v) => v.labels.driver === 'LocalStorage' && v.labels.operation === 'put')?.value).toBeGreaterThan(0);
    const started = await registry.getSingleMetric('quay_multipart_uploads_started_total')!.get();
    expect(started.help).toBe('number of multipart uploads to Quay storage that started');
  });

  it('rejects bad sizes, part numbers and expiries before the driver sees them', async () => {
    const writer = await store.createMultipart('m/bad');
    await expect(writer.writePart(0, Buffer.from('x'), 1)).rejects.toThrow('part number must be an integer in 1..10000');
    await expect(writer.writePart(1, Buffer.from('xy'), 1)).rejects.toThrow('does not match the 2-byte buffer');
    await writer.abort();
    await expect(store.put('k', Readable.from([]), { contentLength: -1 })).rejects.toThrow('size must be a non-negative integer');
    await expect(store.signedReadUrl('k', 0)).rejects.toBeInstanceOf(StorageError);
    expect(await store.exists('k')).toBe(false);
  });
});
