/** Conformance cases for multipart writes: commit, abort, resume, part rewrite, stale upload listing. */
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { NotFoundError } from '../errors.ts';
import type { IncompleteUpload, MultipartWriter } from '../types.ts';
import { generate, readAll, readSmall } from './data.ts';
import type { SuiteContext } from './context.ts';
import { drain } from './objects.ts';

const KiB = 1024;

/** Writes part `n` of generated data and returns its bytes' digest input for the whole-object hash. */
async function writeGenerated(writer: MultipartWriter, partNumber: number, size: number, seed: number): Promise<void> {
  const data = generate(size, seed);
  await writer.writePart(partNumber, data.stream, size);
}

/** The digest of parts `sizes` generated with `seeds`, concatenated. */
async function concatDigest(sizes: readonly number[], seeds: readonly number[]): Promise<string> {
  const hash = createHash('sha256');
  for (const [i, size] of sizes.entries()) {
    for await (const chunk of generate(size, seeds[i] as number).stream as AsyncIterable<Buffer>) hash.update(chunk);
  }
  return `sha256:${hash.digest('hex')}`;
}

export function multipartCases(ctx: SuiteContext): void {
  const key = (name: string): string => `${ctx.prefix()}${name}`;
  const partSize = (): number => Math.max(ctx.store().minPartBytes, 256 * KiB);

  it('commits a multipart upload that is invisible until complete', async () => {
    const store = ctx.store();
    const sizes = [partSize(), partSize() + 17, 1000];
    const writer = await store.createMultipart(key('mp/object'), { contentType: 'application/octet-stream' });
    expect(writer.uploadId).toBeTruthy();
    for (const [i, size] of sizes.entries()) await writeGenerated(writer, i + 1, size, 100 + i);
    expect(await store.exists(key('mp/object'))).toBe(false);
    expect(await drain(store.list(ctx.prefix()))).toEqual([]);
    const stat = await writer.complete();
    expect(stat.size).toBe(sizes[0]! + sizes[1]! + sizes[2]!);
    expect(await readAll(await store.get(key('mp/object')))).toEqual({ size: stat.size, digest: await concatDigest(sizes, [100, 101, 102]) });
    expect(await drain(store.listMultipartUploads(ctx.prefix()))).toEqual([]);
    await store.delete(key('mp/object'));
  });

  it('replaces a part written twice (retries are safe)', async () => {
    const store = ctx.store();
    const writer = await store.createMultipart(key('mp/retried'));
    await writeGenerated(writer, 1, partSize(), 7);
    await writeGenerated(writer, 1, partSize(), 8);
    await writer.writePart(2, Buffer.from('tail'), 4);
    await writer.complete();
    const stored = await readAll(await store.get(key('mp/retried')));
    expect(stored.size).toBe(partSize() + 4);
    const expected = createHash('sha256');
    for await (const chunk of generate(partSize(), 8).stream as AsyncIterable<Buffer>) expected.update(chunk);
    expected.update('tail');
    expect(stored.digest).toBe(`sha256:${expected.digest('hex')}`);
    await store.delete(key('mp/retried'));
  });

  it('aborts an upload, leaving nothing, and a second abort is a no-op', async () => {
    const store = ctx.store();
    await store.put(key('mp/kept'), Buffer.from('previous'));
    const writer = await store.createMultipart(key('mp/kept'));
    await writeGenerated(writer, 1, partSize(), 3);
    await writer.abort();
    await writer.abort();
    expect((await readSmall(await store.get(key('mp/kept')))).toString()).toBe('previous');
    expect(await drain(store.listMultipartUploads(ctx.prefix()))).toEqual([]);
    await expect(writer.complete()).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.resumeMultipart(key('mp/kept'), writer.uploadId)).rejects.toBeInstanceOf(NotFoundError);
    await store.delete(key('mp/kept'));
  });

  it('resumes an upload by id from another store instance', async () => {
    const store = ctx.store();
    const writer = await store.createMultipart(key('mp/resumed'));
    await writeGenerated(writer, 1, partSize(), 11);
    const other = await ctx.target.create();
    try {
      const resumed = await other.resumeMultipart(key('mp/resumed'), writer.uploadId);
      expect(resumed.uploadId).toBe(writer.uploadId);
      await writeGenerated(resumed, 2, 5000, 12);
      const stat = await resumed.complete();
      expect(stat.size).toBe(partSize() + 5000);
      expect(await readAll(await store.get(key('mp/resumed')))).toEqual({ size: stat.size, digest: await concatDigest([partSize(), 5000], [11, 12]) });
      await expect(other.resumeMultipart(key('mp/resumed'), writer.uploadId)).rejects.toBeInstanceOf(NotFoundError);
    } finally {
      await other.close();
    }
    await store.delete(key('mp/resumed'));
  });

  it('lists incomplete uploads under a prefix, filtered by age, and aborts them', async () => {
    const store = ctx.store();
    const started = Date.now();
    const a = await store.createMultipart(key('stale/a'));
    const b = await store.createMultipart(key('stale/b'));
    const elsewhere = await store.createMultipart(key('other/c'));
    await a.writePart(1, Buffer.from('part'), 4);
    const ids = (uploads: IncompleteUpload[]): string[] => uploads.map((u) => `${u.key}#${u.uploadId}`).sort();
    const all = await drain(store.listMultipartUploads(key('stale/')));
    expect(ids(all)).toEqual([`${key('stale/a')}#${a.uploadId}`, `${key('stale/b')}#${b.uploadId}`].sort());
    for (const upload of all) expect(Math.abs(upload.initiated.getTime() - started)).toBeLessThan(10 * 60_000);
    expect(await drain(store.listMultipartUploads(key('stale/'), new Date(started - 3_600_000)))).toEqual([]);
    expect(ids(await drain(store.listMultipartUploads(key('stale/'), new Date(Date.now() + 3_600_000))))).toEqual(ids(all));
    for (const upload of all) await store.abortMultipartUpload(upload);
    await store.abortMultipartUpload(all[0]!);
    expect(await drain(store.listMultipartUploads(key('stale/')))).toEqual([]);
    expect(await store.exists(key('stale/a'))).toBe(false);
    await elsewhere.abort();
  });
}
