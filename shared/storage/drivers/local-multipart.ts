/**
 * Multipart uploads on the filesystem: `<root>/.quayfleet/multipart/<uploadId>/` holds `meta.json`
 * (`{ key, initiated }`) and one file per part (`part-00001`, ...). Every part is itself written
 * through a temp file and renamed, so a crash mid-part leaves the previous state; rewriting a part
 * replaces it. `complete()` concatenates the parts into a temp file and renames it onto the key.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NotFoundError } from '../errors.ts';
import type { IncompleteUpload, MultipartWriter, ObjectStat } from '../types.ts';
import { fsError } from './local-errors.ts';
import type { LocalStorage } from './local.ts';
import { assertPartsComplete, isUploadId, newUploadId } from './multipart-ids.ts';

const PART_FILE = /^part-(\d{5})$/;

interface UploadMeta {
  key: string;
  initiated: string;
}

/** The multipart half of LocalStorage. */
export class LocalMultipart {
  constructor(
    private readonly dir: string,
    private readonly store: LocalStorage,
  ) {}

  async create(key: string): Promise<MultipartWriter> {
    const uploadId = newUploadId();
    const meta: UploadMeta = { key, initiated: new Date().toISOString() };
    const tmp = await this.store.tempFile();
    try {
      await writeFile(tmp, JSON.stringify(meta), { flush: true });
      await mkdir(this.uploadDir(uploadId), { recursive: true });
      await rename(tmp, path.join(this.uploadDir(uploadId), 'meta.json'));
    } catch (error) {
      await rm(tmp, { force: true });
      throw fsError(error, 'createMultipart', key);
    }
    return this.writer(key, uploadId);
  }

  async resume(key: string, uploadId: string): Promise<MultipartWriter> {
    const meta = await this.readMeta(uploadId);
    if (!meta || meta.key !== key) {
      throw new NotFoundError('no such multipart upload', { driver: this.store.driverName, operation: 'resumeMultipart', key });
    }
    return this.writer(key, uploadId);
  }

  async *list(prefix: string, olderThan?: Date): AsyncIterable<IncompleteUpload> {
    let ids: string[];
    try {
      ids = (await readdir(this.dir)).filter(isUploadId).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fsError(error, 'listMultipartUploads', prefix);
    }
    for (const uploadId of ids) {
      const meta = await this.readMeta(uploadId);
      if (!meta || !meta.key.startsWith(prefix)) continue;
      const initiated = new Date(meta.initiated);
      if (olderThan && initiated >= olderThan) continue;
      yield { key: meta.key, uploadId, initiated };
    }
  }

  async abort(key: string, uploadId: string): Promise<void> {
    const meta = await this.readMeta(uploadId);
    if (meta && meta.key === key) await rm(this.uploadDir(uploadId), { recursive: true, force: true });
  }

  private uploadDir(uploadId: string): string {
    return path.join(this.dir, uploadId);
  }

  private async readMeta(uploadId: string): Promise<UploadMeta | undefined> {
    if (!isUploadId(uploadId)) return undefined;
    try {
      return JSON.parse(await readFile(path.join(this.uploadDir(uploadId), 'meta.json'), 'utf8')) as UploadMeta;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fsError(error, 'multipart', uploadId);
    }
  }

  private writer(key: string, uploadId: string): MultipartWriter {
    const dir = this.uploadDir(uploadId);
    const store = this.store;
    const gone = (operation: string): NotFoundError =>
      new NotFoundError('no such multipart upload (completed or aborted)', { driver: store.driverName, operation, key });
    return {
      key,
      uploadId,
      writePart: async (partNumber: number, body: Readable | Buffer): Promise<void> => {
        if (!(await this.readMeta(uploadId))) throw gone('writePart');
        const tmp = await store.tempFile();
        try {
          await pipeline(Buffer.isBuffer(body) ? Readable.from([body]) : body, createWriteStream(tmp, { flags: 'wx', flush: true }));
          await rename(tmp, path.join(dir, `part-${String(partNumber).padStart(5, '0')}`));
        } catch (error) {
          await rm(tmp, { force: true });
          throw (error as NodeJS.ErrnoException).code === 'ENOENT' ? gone('writePart') : fsError(error, 'writePart', key);
        }
      },
      complete: async (): Promise<ObjectStat> => {
        if (!(await this.readMeta(uploadId))) throw gone('complete');
        const parts = await partFiles(dir, store.driverName, key);
        const tmp = await store.tempFile();
        try {
          const out = createWriteStream(tmp, { flags: 'wx', flush: true });
          await pipeline(async function* concat() {
            for (const part of parts) yield* createReadStream(path.join(dir, part));
          }, out);
          await store.publish(tmp, key);
        } catch (error) {
          await rm(tmp, { force: true });
          throw fsError(error, 'complete', key);
        }
        await rm(dir, { recursive: true, force: true });
        return store.stat(key);
      },
      abort: () => rm(dir, { recursive: true, force: true }),
    };
  }
}

/** The part files of an upload in order; throws unless they are exactly parts 1..n with n >= 1. */
async function partFiles(dir: string, driver: string, key: string): Promise<string[]> {
  const parts = (await readdir(dir)).filter((name) => PART_FILE.test(name)).sort();
  assertPartsComplete(parts.map((name) => Number(PART_FILE.exec(name)?.[1])), driver, key);
  return parts;
}
