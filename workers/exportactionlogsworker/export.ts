/**
 * Streams one export's log entries into storage in Quay's document layout:
 *
 *   {"export_id": "...", "details": {"start_time", "end_time", "namespace", "repository"}, "logs": [
 *   <entry>,<entry>,...,{"terminator": true}]}
 *
 * Entries come from Postgres already rendered (shared/db/log-views.ts), in keyset pages, and go
 * out through a multipart write in parts of at least the driver's minimum (and 1 MiB): memory
 * holds one page and one part, whatever the number of rows. Query time is bounded by
 * EXPORT_ACTION_LOGS_MAXIMUM_QUERY_TIME_SECONDS (the sum over pages, each page's statement_timeout
 * set to what is left) and the whole stream by EXPORT_ACTION_LOGS_MAXIMUM_SECONDS.
 */
import type { Pool, PoolClient } from '../../shared/db/pool.ts';
import { readLogChunk, type LogCursor, type LogFilter, type RenderedChunk } from '../../shared/db/log-views.ts';
import type { MultipartWriter, ObjectStore } from '../../shared/storage/types.ts';

/** Rows per keyset page. */
export const EXPORT_PAGE_ROWS = 10_000;
/**
 * Smallest part written where the driver allows smaller (S3's own minimum is 5 MiB): a few parts
 * per export rather than hundreds, each one request (and, on LocalStorage, one fsync).
 */
const MIN_PART_BYTES = 8 * 1024 * 1024;

/** Thrown when a time limit cut the export off (Quay's LogsIterationTimeout: status `timedout`). */
export class ExportTimedOutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportTimedOutError';
  }
}

export interface ExportLimits {
  /** Sum of page query times allowed (ms). */
  readonly maxQueryMs: number;
  /** Wall time allowed for the whole stream (ms). */
  readonly maxTotalMs: number;
}

/** What the document header names. */
export interface ExportHeader {
  readonly exportId: string;
  readonly start: Date;
  readonly end: Date;
  readonly namespace: string;
  readonly repository: string | null;
}

/** Rows and bytes written. */
export interface ExportResult {
  readonly rows: number;
  readonly bytes: number;
}

/**
 * Writes the document to `key` in `store` and completes the upload. On any failure (including a
 * timeout or `signal`) the multipart upload is aborted and the error rethrown.
 */
export async function streamExport(
  db: Pool, store: ObjectStore, key: string, header: ExportHeader, filter: LogFilter, limits: ExportLimits, signal: AbortSignal,
): Promise<ExportResult> {
  const writer = await store.createMultipart(key, { contentType: 'application/json' });
  const parts = new PartBuffer(writer, Math.max(MIN_PART_BYTES, store.minPartBytes));
  const client = await db.connect();
  const startedMs = Date.now();
  const queryTime = { ms: 0 };
  let rows = 0;
  try {
    parts.append(`{"export_id": ${JSON.stringify(header.exportId)}, "details": ${JSON.stringify({
      start_time: rfc2822(header.start), end_time: rfc2822(header.end), namespace: header.namespace, repository: header.repository,
    })}, "logs": [`);
    // The next page is read while the last part is written: Postgres and storage work at once.
    let next: Promise<RenderedChunk> | undefined = prefetch(timedChunk(client, filter, undefined, limits, startedMs, queryTime));
    while (next) {
      const chunk: RenderedChunk = await next;
      next = undefined;
      if (chunk.rows === EXPORT_PAGE_ROWS) {
        if (signal.aborted) throw new Error('export interrupted by shutdown');
        next = prefetch(timedChunk(client, filter, chunk.last, limits, startedMs, queryTime));
      }
      parts.append(chunk.text);
      rows += chunk.rows;
      try {
        await parts.flushFull();
      } catch (error) {
        // The connection goes back to the pool only once its query is over.
        await next?.catch(() => undefined);
        throw error;
      }
    }
    parts.append('{"terminator": true}]}');
    await parts.flushAll();
    await writer.complete();
    return { rows, bytes: parts.bytes };
  } catch (error) {
    await writer.abort().catch(() => undefined);
    throw error;
  } finally {
    await client.query('RESET statement_timeout').catch(() => undefined);
    client.release();
  }
}

/** Marks a read-ahead as handled while the current part is written; it is awaited (and throws) later. */
function prefetch<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/**
 * The page after `cursor`, within the limits: the query's statement_timeout is the query time
 * left, which `queryTime` accumulates. Throws ExportTimedOutError when a limit is spent, that is
 * reached (as the query-time one): a 0 s limit cuts the export off however fast the first page comes.
 */
async function timedChunk(
  client: PoolClient, filter: LogFilter, cursor: LogCursor | undefined, limits: ExportLimits, startedMs: number, queryTime: { ms: number },
): Promise<RenderedChunk> {
  const remainingMs = limits.maxQueryMs - queryTime.ms;
  if (remainingMs <= 0) throw new ExportTimedOutError(`log queries took more than ${limits.maxQueryMs} ms`);
  if (Date.now() - startedMs >= limits.maxTotalMs) throw new ExportTimedOutError(`export took more than ${limits.maxTotalMs} ms`);
  const before = Date.now();
  try {
    await client.query(`SET statement_timeout = ${Math.max(1, Math.ceil(remainingMs))}`);
    return await readLogChunk(client, filter, { limit: EXPORT_PAGE_ROWS, cursor });
  } catch (error) {
    // 57014 query_canceled: the statement_timeout fired.
    if ((error as { code?: string }).code === '57014') throw new ExportTimedOutError(`a log query ran past the ${remainingMs} ms left`);
    throw error;
  } finally {
    queryTime.ms += Date.now() - before;
  }
}

/** A date as Python's email.utils.formatdate writes it ("Wed, 01 Jan 2020 00:00:00 -0000"). */
export function rfc2822(date: Date): string {
  return date.toUTCString().replace('GMT', '-0000');
}

/** Collects text into parts of `partBytes` and hands full parts to the multipart writer. */
class PartBuffer {
  private chunks: Buffer[] = [];
  private pending = 0;
  private partNumber = 0;
  bytes = 0;

  constructor(private readonly writer: MultipartWriter, private readonly partBytes: number) {}

  append(text: string): void {
    const chunk = Buffer.from(text, 'utf8');
    this.chunks.push(chunk);
    this.pending += chunk.length;
    this.bytes += chunk.length;
  }

  /** Writes everything pending as one part once at least `partBytes` are pending (one copy, no split). */
  async flushFull(): Promise<void> {
    if (this.pending < this.partBytes) return;
    const part = Buffer.concat(this.chunks, this.pending);
    this.chunks = [];
    this.pending = 0;
    await this.writePart(part);
  }

  /** Writes everything pending as the last part. */
  async flushAll(): Promise<void> {
    if (this.pending > 0 || this.partNumber === 0) await this.writePart(Buffer.concat(this.chunks, this.pending));
    this.chunks = [];
    this.pending = 0;
  }

  private async writePart(body: Buffer): Promise<void> {
    this.partNumber += 1;
    await this.writer.writePart(this.partNumber, body, body.length);
  }
}
