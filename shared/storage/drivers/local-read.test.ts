import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalFileStream, pooledReadBuffers } from './local-read.ts';

const MiB = 1024 * 1024;
const root = mkdtempSync(path.join(os.tmpdir(), 'quayfleet-local-read-'));
const file = path.join(root, 'blob');
// Not a multiple of the 1 MiB read: the last read is short.
const bytes = randomBytes(3 * MiB + 12_345);
const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

let server: http.Server;
let base: string;
/** Streams that served a request, to check each one ended and closed its descriptor. */
const served: LocalFileStream[] = [];

beforeAll(async () => {
  writeFileSync(file, bytes);
  server = http.createServer((request, response) => {
    const url = new URL(request.url!, 'http://x');
    const start = Number(url.searchParams.get('start') ?? 0);
    const end = Number(url.searchParams.get('end') ?? bytes.length);
    const stream = new LocalFileStream(openSync(file, 'r'), start, end);
    served.push(stream);
    response.setHeader('Content-Length', String(end - start));
    stream.pipe(response);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
  rmSync(root, { recursive: true, force: true });
});

async function fetchBytes(query = ''): Promise<Buffer> {
  const response = await fetch(`${base}/${query}`);
  return Buffer.from(await response.arrayBuffer());
}

describe('LocalFileStream', () => {
  it('sends a blob into an HTTP response with reused buffers, whole and in ranges', async () => {
    const pulls = await Promise.all([fetchBytes(), fetchBytes(), fetchBytes()]);
    for (const pulled of pulls) expect(sha(pulled)).toBe(sha(bytes));
    // Three pulls at once took three buffers and gave them back; the next pull reuses one.
    expect(pooledReadBuffers()).toBeGreaterThanOrEqual(3);
    const pooled = pooledReadBuffers();
    expect(sha(await fetchBytes())).toBe(sha(bytes));
    expect(pooledReadBuffers()).toBe(pooled);
    expect((await fetchBytes(`?start=${MiB - 5}&end=${2 * MiB + 7}`)).equals(bytes.subarray(MiB - 5, 2 * MiB + 7))).toBe(true);
    expect((await fetchBytes('?start=10&end=20')).equals(bytes.subarray(10, 20))).toBe(true);
    expect((await fetchBytes(`?start=${bytes.length}&end=${bytes.length}`)).length).toBe(0);
    // Every stream ended as a consumed stream does, and closed its descriptor.
    await Promise.all(served.map((s) => (s.closed ? undefined : once(s, 'close'))));
    expect(served.every((s) => s.readableEnded && s.closed)).toBe(true);
  });

  it('stops reading and closes the descriptor when the client goes away mid-blob', async () => {
    served.length = 0;
    const pooled = pooledReadBuffers();
    const request = http.get(`${base}/`);
    const [response] = await once(request, 'response') as [http.IncomingMessage];
    await once(response, 'data');
    request.destroy();
    const [stream] = served;
    if (!stream!.closed) await once(stream!, 'close');
    expect(stream!.readableEnded).toBe(false);
    // The cut write may still have held the buffer: it is not returned to the pool.
    expect(pooledReadBuffers()).toBeLessThanOrEqual(pooled);
  });

  it('gives any other consumer fresh chunks, ranges included', async () => {
    const whole: Buffer[] = [];
    for await (const chunk of new LocalFileStream(openSync(file, 'r'), 0, bytes.length)) whole.push(chunk as Buffer);
    expect(sha(Buffer.concat(whole))).toBe(sha(bytes));
    // Chunks are distinct buffers: a consumer may keep every one.
    expect(new Set(whole.map((c) => c.buffer)).size).toBe(whole.length);
    const part: Buffer[] = [];
    for await (const chunk of new LocalFileStream(openSync(file, 'r'), 100, 70_000)) part.push(chunk as Buffer);
    expect(Buffer.concat(part).equals(bytes.subarray(100, 70_000))).toBe(true);
  });
});
