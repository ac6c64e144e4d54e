/**
 * Deadlines of storage requests. A storage server that accepts connections and then says nothing
 * (a hung RadosGW, a partition) must not hold a registry request for minutes: the front end answers
 * 503 with Retry-After as soon as its deadline passes, and the client retries. Workers wait longer,
 * since a failed job is retried anyway and a slow backend is more likely than a dead one.
 *
 * A deadline bounds time without progress, never a whole transfer: connecting, waiting for the
 * first byte of the answer, and any later stretch in which no byte moves either way. A large blob
 * that keeps flowing is never cut, however long it takes.
 */
import { Readable } from 'node:stream';
import { REGISTRY_STORAGE_TIMEOUT_SECONDS, WORKER_STORAGE_TIMEOUT_SECONDS } from '../config/schema.ts';

/** The deadlines one process gives its storage requests. */
export interface StorageTimeouts {
  /** Time without progress (connecting, until the answer starts, or between bytes) before a request fails. */
  readonly idleMs: number;
  /**
   * Once a read's body is flowing to its caller: the same, longer, since a caller that reads slowly
   * (a client on a slow link, pushing back) also stops the bytes.
   */
  readonly streamIdleMs: number;
  /** Tries per request where the driver retries (timeouts, 5xx, dropped connections), the first included. */
  readonly attempts: number;
}

/** A flowing read is given at least this long without a byte before it fails. */
const MIN_STREAM_IDLE_MS = 60_000;

/** The deadlines of a front end (`registry`) or of workers and commands (`worker`) from their configured seconds. */
export function storageTimeouts(role: 'registry' | 'worker', seconds?: number): StorageTimeouts {
  const idleMs = (seconds ?? (role === 'registry' ? REGISTRY_STORAGE_TIMEOUT_SECONDS : WORKER_STORAGE_TIMEOUT_SECONDS)) * 1000;
  return { idleMs, streamIdleMs: Math.max(idleMs, MIN_STREAM_IDLE_MS), attempts: role === 'registry' ? 2 : 3 };
}

/** The defaults when nothing says otherwise (tests, benchmarks, tools building a store directly). */
export const DEFAULT_STORAGE_TIMEOUTS: StorageTimeouts = storageTimeouts('worker');

/** The connect deadline: the idle one, capped (a TCP handshake that takes 10 s is not coming). */
export function connectTimeoutMs(timeouts: StorageTimeouts): number {
  return Math.min(timeouts.idleMs, 10_000);
}

/**
 * An abort signal that fires once `idleMs` pass without `touch()` (or `parent` aborts): for
 * SDK calls that take a signal but have no idle deadline of their own. `done()` stops the timer;
 * the signal still follows `parent` after it.
 */
export function idleDeadline(idleMs: number, parent?: AbortSignal): { signal: AbortSignal; touch(): void; done(): void } {
  const controller = new AbortController();
  const expire = (): void => controller.abort(new Error(`storage request made no progress for ${idleMs / 1000} s`));
  let timer = setTimeout(expire, idleMs);
  const onParent = (): void => controller.abort(parent?.reason);
  parent?.addEventListener('abort', onParent, { once: true });
  if (parent?.aborted) onParent();
  return {
    signal: controller.signal,
    touch() {
      if (controller.signal.aborted) return;
      clearTimeout(timer);
      timer = setTimeout(expire, idleMs);
    },
    // The parent's listener stays: a caller's abort must still reach a body that flows on.
    done() {
      clearTimeout(timer);
    },
  };
}

/** Slice size of `sliced`: small enough that a progress callback sees a slow socket still taking bytes. */
const SLICE_BYTES = 64 * 1024;

/**
 * `buffer` as a stream of 64 KiB slices. An SDK reports upload progress per chunk it hands to the
 * socket; one 16 MiB chunk would look idle for as long as the socket takes to send it.
 */
export function sliced(buffer: Buffer): Readable {
  return Readable.from((function* slices() {
    for (let offset = 0; offset < buffer.length; offset += SLICE_BYTES) yield buffer.subarray(offset, offset + SLICE_BYTES);
  })());
}
