/**
 * The native copy of one tag: its manifest (and, for an index, the children the architecture
 * filter keeps), every blob streamed from the upstream's response straight into storage with its
 * digest and size verified while streaming, then the tag in one transaction (store.ts).
 *
 * A blob is transferred at most once per sync (single flight by digest) and never when the
 * registry already holds it (linked here, or held anywhere: leased under its digest lock).
 * Transfers are bounded per sync and per worker process; memory per transfer is the stream's
 * buffers, whatever the blob's size.
 */
import { randomUUID } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { findRepositoryBlob } from '../../shared/db/blobs.ts';
import { withTransaction, type Queryable } from '../../shared/db/pool.ts';
import { getTaggedManifest } from '../../shared/db/tags.ts';
import { uploadKey } from '../../shared/storage/keys.ts';
import { OffThreadSha256 } from './hasher.ts';
import { readManifest, type Descriptor, type MirrorManifest } from './manifest.ts';
import { commitMirroredBlob, leaseHeldBlob, storeTag, type MirrorTarget, type StoreDeps } from './store.ts';
import { UpstreamError, type UpstreamRepository } from './upstream.ts';

/** A counting semaphore: at most `limit` holders at once. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active += 1;
    try {
      return await fn();
    } finally {
      this.active -= 1;
      this.waiting.shift()?.();
    }
  }
}

/** Counters of one sync. */
export interface CopyStats {
  blobsCopied: number;
  blobsSkipped: number;
  bytesCopied: number;
  tagsCopied: number;
}

/**
 * Verifies digest and size of the bytes passing through; fails the stream on a mismatch. The
 * hashing runs on the hashing thread (hasher.ts); the size checks here, at once.
 */
class VerifyingStream extends Transform {
  private readonly hash = new OffThreadSha256();
  bytes = 0;

  constructor(private readonly expected: Descriptor) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expected.size) return callback(new UpstreamError(`blob ${this.expected.digest} is larger than the ${this.expected.size} bytes its manifest declares`));
    const full = this.hash.update(chunk);
    if (!full) return callback(null, chunk);
    this.push(chunk);
    full.then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.bytes !== this.expected.size) {
      this.hash.drop();
      return callback(new UpstreamError(`blob ${this.expected.digest} ended after ${this.bytes} of ${this.expected.size} bytes`));
    }
    this.hash.digest().then((hex) => {
      if (!hex) return callback(new Error(`blob ${this.expected.digest} could not be verified: the hashing thread stopped`));
      const digest = `sha256:${hex}`;
      if (digest !== this.expected.digest) return callback(new UpstreamError(`blob ${this.expected.digest} arrived with digest ${digest}: the upstream served other bytes`));
      callback();
    }, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.hash.drop();
    callback(error);
  }
}

/** What one sync's copies share. */
export interface CopyContext {
  readonly deps: StoreDeps;
  readonly target: MirrorTarget;
  readonly upstream: UpstreamRepository;
  /** Architectures to keep from an index; empty keeps every platform (and the index digest). */
  readonly architectures: readonly string[];
  /** Transfers of this sync at once. */
  readonly perSync: Semaphore;
  /** Transfers of this worker process at once. */
  readonly perWorker: Semaphore;
  readonly stats: CopyStats;
  readonly signal: AbortSignal;
  /** Blobs of this sync, by digest: one transfer each. */
  readonly inFlight: Map<string, Promise<void>>;
}

/** A fresh copy context. */
export function newCopyContext(input: Omit<CopyContext, 'perSync' | 'stats' | 'inFlight'> & { perSyncLimit: number }): CopyContext {
  const { perSyncLimit, ...rest } = input;
  return { ...rest, perSync: new Semaphore(perSyncLimit), stats: { blobsCopied: 0, blobsSkipped: 0, bytesCopied: 0, tagsCopied: 0 }, inFlight: new Map() };
}

async function transfer(ctx: CopyContext, blob: Descriptor): Promise<void> {
  const { storage } = ctx.deps;
  const location = storage.preferredLocation;
  const store = storage.store(location);
  const objectKey = uploadKey(randomUUID());
  try {
    const { stream } = await ctx.upstream.openBlob(blob.digest);
    const verifying = new VerifyingStream(blob);
    // A small blob can end (and fail verification) before the driver attaches to the stream: keep
    // the error here and raise it after put, whatever put made of it.
    let streamError: Error | undefined;
    verifying.on('error', (error) => { streamError ??= error; });
    stream.once('error', (error) => verifying.destroy(error));
    await store.put(objectKey, stream.pipe(verifying), { contentLength: blob.size, signal: ctx.signal });
    if (streamError) throw streamError;
    ctx.signal.throwIfAborted();
    await commitMirroredBlob(ctx.deps, ctx.target.repository, { digest: blob.digest, size: blob.size, objectKey, location });
    ctx.stats.blobsCopied += 1;
    ctx.stats.bytesCopied += blob.size;
  } catch (error) {
    await store.delete(objectKey).catch(() => undefined);
    throw error;
  }
}

async function ensureBlob(ctx: CopyContext, blob: Descriptor): Promise<void> {
  const { repository } = ctx.target;
  if (await findRepositoryBlob(ctx.deps.db, repository.id, blob.digest, new Date())) {
    ctx.stats.blobsSkipped += 1;
    return;
  }
  if (await leaseHeldBlob(ctx.deps, repository, blob.digest, blob.size)) {
    ctx.stats.blobsSkipped += 1;
    return;
  }
  await ctx.perSync.run(() => ctx.perWorker.run(() => transfer(ctx, blob)));
}

/** Makes every blob of `manifest` present in the repository (single flight per digest). */
async function ensureBlobs(ctx: CopyContext, manifest: MirrorManifest): Promise<void> {
  await Promise.all(manifest.blobs.map((blob) => {
    let pending = ctx.inFlight.get(blob.digest);
    if (!pending) {
      pending = ensureBlob(ctx, blob);
      ctx.inFlight.set(blob.digest, pending);
      // A failed transfer may be retried by the next tag that needs the blob.
      pending.catch(() => ctx.inFlight.delete(blob.digest));
    }
    return pending;
  }));
}

async function architectureOf(ctx: CopyContext, manifest: MirrorManifest): Promise<string | undefined> {
  const config = manifest.config!;
  const { stream } = await ctx.deps.storage.openBlob(config.digest, ctx.deps.storage.locations, undefined, { expectedSize: config.size });
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  try {
    return (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { architecture?: string }).architecture;
  } catch {
    return undefined;
  }
}

/** How a tag ended: copied (the tag moved), unchanged (already there), skipped (architecture filter). */
export type TagOutcome = 'copied' | 'unchanged' | 'skipped';

/** A tag whose content is in the repository, ready to be pointed at; or why there is nothing to do. */
export type PreparedTag = { readonly outcome: 'unchanged' | 'skipped' } | { readonly manifests: readonly MirrorManifest[] };

/**
 * Fetches tag `tag`'s manifests and makes their blobs present (transfers as needed). Tags may be
 * prepared ahead of their turn; `commitTags` then applies them in order.
 */
export async function prepareTag(ctx: CopyContext, tag: string): Promise<PreparedTag> {
  const top = readManifest(await ctx.upstream.getManifest(tag));
  const local = await getTaggedManifest(ctx.deps.db, ctx.target.repository.id, tag, Date.now());
  if (local?.digest === top.digest) return { outcome: 'unchanged' };
  const manifests: MirrorManifest[] = [];
  const filter = new Set(ctx.architectures);
  if (top.isIndex) {
    const children = filter.size === 0 ? top.children : top.children.filter((c) => c.platform?.architecture !== undefined && filter.has(c.platform.architecture));
    if (children.length === 0) throw new UpstreamError(`no manifest of the index matches the architecture filter ${[...filter].join(', ')}`);
    for (const child of children) {
      const manifest = readManifest(await ctx.upstream.getManifest(child.digest));
      if (manifest.isIndex) throw new UpstreamError(`index ${top.digest} nests another index (${child.digest}), which is not mirrored`);
      await ensureBlobs(ctx, manifest);
      manifests.push(manifest);
    }
  } else {
    if (filter.size > 0) {
      await ensureBlobs(ctx, { ...top, blobs: [top.config!] });
      const architecture = await architectureOf(ctx, top);
      if (architecture === undefined || !filter.has(architecture)) return { outcome: 'skipped' };
    }
    await ensureBlobs(ctx, top);
  }
  manifests.push(top);
  return { manifests };
}

/** A tag ready to be applied. */
export interface ReadyTag {
  readonly tag: string;
  readonly prepared: PreparedTag;
}

/**
 * Applies `tags` in order in ONE transaction (one commit for several tags: a commit waits for the
 * database's WAL flush), calling `record` in it after each (the tag's log entry). Any failure
 * rolls them all back; the caller then applies them one by one to isolate it.
 */
export async function commitTags(
  ctx: CopyContext, tags: readonly ReadyTag[], record: (tx: Queryable, tag: string, outcome: TagOutcome) => Promise<void>,
): Promise<TagOutcome[]> {
  ctx.signal.throwIfAborted();
  const outcomes = await withTransaction(ctx.deps.db, async (tx) => {
    const done: TagOutcome[] = [];
    for (const { tag, prepared } of tags) {
      const outcome = 'outcome' in prepared ? prepared.outcome
        : (await storeTag(ctx.deps, tx, ctx.target, tag, prepared.manifests)) ? 'copied' : 'unchanged';
      await record(tx, tag, outcome);
      done.push(outcome);
    }
    return done;
  });
  ctx.stats.tagsCopied += outcomes.filter((o) => o === 'copied').length;
  return outcomes;
}
