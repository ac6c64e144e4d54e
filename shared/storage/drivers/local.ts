/**
 * LocalStorage: objects are files under `storage_path` (Quay mounts it at `/datastorage`), one file
 * per key, directories per key segment. Writes go to a temp file in the reserved area and are
 * renamed into place, so a reader sees the old object or the new one, never a partial one.
 * Multipart uploads are directories of part files (see `local-multipart.ts`).
 */
import { close, createWriteStream, fstat, open as openFd } from 'node:fs';
import { access, copyFile, lstat, mkdir, opendir, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { z } from 'zod';
import { deleteEach } from '../concurrency.ts';
import { existsBy, InvalidKeyError, InvalidRangeError, NotFoundError, StorageError, UnsupportedError } from '../errors.ts';
import { RESERVED_PREFIX } from '../keys.ts';
import type {
  ByteRange, DeleteManyResult, ObjectStat, ObjectStore, StorageCapabilities, WriteOptions,
} from '../types.ts';
import { DRIVER, fsError } from './local-errors.ts';
import { LocalMultipart } from './local-multipart.ts';
import { LocalFileStream } from './local-read.ts';
import { MultipartStore } from './multipart-store.ts';

/** Quay's LocalStorage parameters. */
export const localParamsSchema = z.object({
  /** Directory holding the objects; created on first write. */
  storage_path: z.string().min(1),
});
export type LocalParams = z.infer<typeof localParamsSchema>;

const openFile = promisify(openFd);
const fstatFile = promisify(fstat);
const closeFile = promisify(close);
// Parallel unlinks per deleteMany chunk: enough to hide syscall latency, few enough for 2 cores.
const DELETE_PARALLELISM = 32;
/** Objects larger than this are read in reads of this size (see get). */
const LARGE_READ_BYTES = 1024 * 1024;

/** The filesystem driver. */
export class LocalStorage extends MultipartStore implements ObjectStore {
  readonly driverName = DRIVER;
  readonly capabilities: StorageCapabilities = {
    signedUrls: false,
    nativeBatchDelete: false,
    maxBatchDeleteKeys: DELETE_PARALLELISM,
    serverSideCopy: true,
    listsIncompleteUploads: true,
  };
  readonly minPartBytes = 1;
  /** Absolute root directory. */
  readonly root: string;
  private readonly tmpDir: string;
  protected readonly multipart: LocalMultipart;

  constructor(params: LocalParams) {
    super();
    this.root = path.resolve(params.storage_path);
    const reserved = path.join(this.root, RESERVED_PREFIX);
    this.tmpDir = path.join(reserved, 'tmp');
    this.multipart = new LocalMultipart(path.join(reserved, 'multipart'), this);
  }

  /** Absolute path of `key` (already validated by the wrapper). */
  filePath(key: string): string {
    return path.join(this.root, ...key.split('/'));
  }

  /** A fresh temp file path inside the root's filesystem, so `rename` into place is atomic. */
  async tempFile(): Promise<string> {
    await mkdir(this.tmpDir, { recursive: true });
    return path.join(this.tmpDir, randomBytes(12).toString('hex'));
  }

  /**
   * Renames the finished temp file `tmp` onto `key`. A concurrent delete may prune the freshly made
   * parent directory between mkdir and rename, so ENOENT is retried a few times.
   */
  async publish(tmp: string, key: string): Promise<void> {
    const target = this.filePath(key);
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(path.dirname(target), { recursive: true });
        await rename(tmp, target);
        return;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // A file where a directory must go (or the reverse): `a/b` and `a/b/c` cannot coexist on disk.
        if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'ENOTDIR' || code === 'EEXIST') {
          throw new InvalidKeyError('on local storage a key cannot also be a directory of other keys', { driver: DRIVER, operation: 'put', key, cause: error });
        }
        if (code !== 'ENOENT' || attempt >= 5) throw error;
      }
    }
  }

  async put(key: string, body: Readable | Buffer, options: WriteOptions = {}): Promise<ObjectStat> {
    const tmp = await this.tempFile();
    try {
      // No backend to check contentMd5: hashed here, before anything is published.
      if (options.contentMd5 && Buffer.isBuffer(body) && !createHash('md5').update(body).digest().equals(options.contentMd5)) {
        throw new StorageError('body does not hash to contentMd5; nothing written', { driver: DRIVER, operation: 'put', key });
      }
      const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
      // `flush` fsyncs before close: after rename the bytes are durable, not just the name. Up to
      // 1 MiB buffered while a write is in flight, then written with one writev: every write is a
      // hand-off to libuv's thread pool, which on a busy machine costs the event loop its turn
      // (an upload's 64 KiB socket chunks were written one by one).
      await pipeline(source, createWriteStream(tmp, { flags: 'wx', flush: true, highWaterMark: LARGE_READ_BYTES }), { signal: options.signal });
      await this.publish(tmp, key);
    } catch (error) {
      await rm(tmp, { force: true });
      throw fsError(error, 'put', key);
    }
    return this.stat(key);
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    // Opening first pins the inode: a concurrent overwrite (rename) cannot mix two versions. A plain
    // descriptor streams small files about 1.6x faster than a FileHandle stream.
    const fd = await openFile(this.filePath(key), 'r').catch((error: unknown) => { throw fsError(error, 'get', key); });
    try {
      const info = await fstatFile(fd);
      if (!info.isFile()) throw new NotFoundError('no such object', { driver: DRIVER, operation: 'get', key });
      const start = range?.start ?? 0;
      if (start > 0 && start >= info.size) {
        throw new InvalidRangeError(`range starts at ${start}, object has ${info.size} bytes`, { driver: DRIVER, operation: 'get', key });
      }
      const end = range?.end === undefined ? info.size : Math.min(range.end + 1, info.size);
      return new LocalFileStream(fd, start, end, signal);
    } catch (error) {
      await closeFile(fd);
      throw fsError(error, 'get', key);
    }
  }

  async stat(key: string): Promise<ObjectStat> {
    const info = await stat(this.filePath(key)).catch((error: unknown) => { throw fsError(error, 'stat', key); });
    if (!info.isFile()) throw new NotFoundError('no such object', { driver: DRIVER, operation: 'stat', key });
    return { key, size: info.size, lastModified: info.mtime };
  }

  exists(key: string): Promise<boolean> {
    return existsBy(this.stat(key));
  }

  async *list(prefix: string): AsyncIterable<ObjectStat> {
    const slash = prefix.lastIndexOf('/');
    yield* this.walk(slash >= 0 ? prefix.slice(0, slash) : '', prefix.slice(slash + 1));
  }

  /**
   * Depth-first walk of directory `dirKey` over entries starting with `namePrefix`. Directories sort
   * as `name/`, so the walk yields keys in byte order exactly like an object store's listing.
   */
  private async *walk(dirKey: string, namePrefix: string): AsyncGenerator<ObjectStat> {
    let entries;
    try {
      entries = await readdir(dirKey ? this.filePath(dirKey) : this.root, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw fsError(error, 'list', dirKey);
    }
    const sorted = entries
      .filter((e) => e.name.startsWith(namePrefix) && !(dirKey === '' && `${e.name}/` === RESERVED_PREFIX))
      .map((e) => ({ entry: e, sortKey: Buffer.from(e.isDirectory() ? `${e.name}/` : e.name) }))
      .sort((a, b) => Buffer.compare(a.sortKey, b.sortKey));
    for (const { entry } of sorted) {
      const key = dirKey ? `${dirKey}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        yield* this.walk(key, '');
      } else if (entry.isFile()) {
        try {
          yield await this.stat(key);
        } catch (error) {
          if (!(error instanceof NotFoundError)) throw error; // deleted while listing: skip it
        }
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.filePath(key));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EPERM') return;
      throw fsError(error, 'delete', key);
    }
    await this.pruneEmptyParents(key);
  }

  /** Removes the directories a delete left empty, up to the root, so deleted prefixes leave no trace. */
  private async pruneEmptyParents(key: string): Promise<void> {
    const segments = key.split('/').slice(0, -1);
    while (segments.length > 0) {
      try {
        await rmdir(this.filePath(segments.join('/')));
      } catch {
        return; // not empty, already gone or busy: someone else owns it now
      }
      segments.pop();
    }
  }

  deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    return deleteEach(keys, DELETE_PARALLELISM, (key) => this.delete(key));
  }

  async copy(from: string, to: string): Promise<void> {
    const tmp = await this.tempFile();
    try {
      // FICLONE makes a copy-on-write clone where the filesystem supports it, a plain copy elsewhere.
      await copyFile(this.filePath(from), tmp, constants.COPYFILE_FICLONE);
      await this.publish(tmp, to);
    } catch (error) {
      await rm(tmp, { force: true });
      throw fsError(error, 'copy', from);
    }
  }

  async copyFrom(source: ObjectStore, fromKey: string, toKey: string): Promise<ObjectStat | false> {
    if (!(source instanceof LocalStorage)) return false;
    const tmp = await this.tempFile();
    try {
      // The clone is taken first and its size reported: what was copied, whatever replaces the source later.
      await copyFile(source.filePath(fromKey), tmp, constants.COPYFILE_FICLONE);
      const copied = await stat(tmp);
      await this.publish(tmp, toKey);
      return { key: fromKey, size: copied.size, lastModified: copied.mtime };
    } catch (error) {
      await rm(tmp, { force: true });
      throw fsError(error, 'copyFrom', fromKey);
    }
  }

  async move(from: string, to: string): Promise<void> {
    const source = await stat(this.filePath(from)).catch((error: unknown) => { throw fsError(error, 'move', from); });
    if (!source.isFile()) throw new NotFoundError('no such object', { driver: DRIVER, operation: 'move', key: from });
    if (from === to) return;
    try {
      await this.publish(this.filePath(from), to);
    } catch (error) {
      throw fsError(error, 'move', from);
    }
    await this.pruneEmptyParents(from);
  }


  /**
   * Deletes temp files (of puts, copies, multipart parts and markers) not modified since `olderThan`:
   * a process killed mid-write leaves its temp file behind, and nothing else ever names it. The
   * directory is read as a stream, so a large backlog is not held in memory.
   */
  async sweepTemporaryFiles(olderThan: Date): Promise<{ files: number; bytes: number }> {
    const swept = { files: 0, bytes: 0 };
    let dir;
    try {
      dir = await opendir(this.tmpDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return swept;
      throw fsError(error, 'sweepTemporaryFiles');
    }
    try {
      for await (const entry of dir) {
        const file = path.join(this.tmpDir, entry.name);
        const info = await lstat(file).catch(() => undefined); // renamed into place meanwhile
        if (!info || info.mtime >= olderThan) continue;
        await rm(file, { recursive: true, force: true });
        swept.files += 1;
        swept.bytes += info.isFile() ? info.size : 0;
      }
    } catch (error) {
      throw fsError(error, 'sweepTemporaryFiles');
    }
    return swept;
  }

  async signedReadUrl(key: string): Promise<string> {
    throw new UnsupportedError('local storage has no signed URLs; serve the bytes through the registry', { driver: DRIVER, operation: 'signedReadUrl', key });
  }

  async ping(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
      await access(this.root, constants.R_OK | constants.W_OK);
    } catch (error) {
      throw fsError(error, 'ping');
    }
  }

  async close(): Promise<void> {}
}
