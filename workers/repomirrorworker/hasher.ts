/**
 * SHA-256 of blob streams on a worker thread, so the event loop that receives a blob and writes it
 * to storage does not also hash it: the two run on two cores, and the loop stays free for the
 * sync's other transfers, its lease renewal and its queries. One thread per process, shared by
 * every transfer; a transfer keeps at most HASH_WINDOW_BYTES posted and not yet hashed, so memory
 * stays bounded whatever the blob's size or the relative speeds.
 */
import { Worker } from 'node:worker_threads';

/** Bytes one stream may have in flight to the hashing thread. */
export const HASH_WINDOW_BYTES = 8 * 1024 * 1024;

// Plain CommonJS so the thread needs no TypeScript loader.
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.type === 'update') {
    let hash = hashes.get(m.id);
    if (!hash) hashes.set(m.id, hash = createHash('sha256'));
    hash.update(m.chunk);
    parentPort.postMessage({ type: 'hashed', id: m.id, bytes: m.chunk.byteLength });
  } else if (m.type === 'digest') {
    const hash = hashes.get(m.id) || createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ type: 'digest', id: m.id, hex: hash.digest('hex') });
  } else if (m.type === 'drop') {
    hashes.delete(m.id);
  }
});
`;

type Reply = { type: 'hashed'; id: number; bytes: number } | { type: 'digest'; id: number; hex: string };

interface Pending {
  inFlight: number;
  drained?: () => void;
  digest?: (hex: string) => void;
}

let thread: Worker | undefined;
let nextId = 1;
const streams = new Map<number, Pending>();

function hashingThread(): Worker {
  if (thread) return thread;
  const worker = new Worker(THREAD_SOURCE, { eval: true, name: 'quayfleet-mirror-hasher' });
  worker.on('message', (reply: Reply) => {
    const pending = streams.get(reply.id);
    if (!pending) return;
    if (reply.type === 'hashed') {
      pending.inFlight -= reply.bytes;
      if (pending.inFlight <= HASH_WINDOW_BYTES / 2) pending.drained?.();
    } else {
      forget(reply.id);
      pending.digest?.(reply.hex);
    }
  });
  // A dead thread fails the streams waiting on it; the next stream starts a new one.
  worker.on('error', () => undefined);
  worker.on('exit', () => {
    if (thread === worker) thread = undefined;
    for (const [id, pending] of streams) {
      streams.delete(id);
      pending.digest?.('');
      pending.drained?.();
    }
  });
  // Kept referenced only while a stream is open (forget()), so an idle thread never keeps a
  // process alive; after the listeners, which ref it again.
  worker.unref();
  thread = worker;
  return worker;
}

function forget(id: number): boolean {
  const known = streams.delete(id);
  if (streams.size === 0) thread?.unref();
  return known;
}

/** One SHA-256 computed on the hashing thread. */
export class OffThreadSha256 {
  private readonly id = nextId++;
  private readonly pending: Pending = { inFlight: 0 };
  private readonly thread = hashingThread();

  constructor() {
    streams.set(this.id, this.pending);
    this.thread.ref();
  }

  /** Hashes `chunk` (copied); resolves at once, or once the window has room again. */
  update(chunk: Buffer): Promise<void> | undefined {
    const copy = new Uint8Array(chunk); // only the view's bytes, into a buffer the thread may own
    this.pending.inFlight += copy.byteLength;
    this.thread.postMessage({ type: 'update', id: this.id, chunk: copy }, [copy.buffer]);
    if (this.pending.inFlight <= HASH_WINDOW_BYTES) return undefined;
    return new Promise((resolve) => {
      this.pending.drained = () => {
        this.pending.drained = undefined;
        resolve();
      };
    });
  }

  /** The hex digest of everything updated so far ('' if the thread died). */
  digest(): Promise<string> {
    return new Promise((resolve) => {
      this.pending.digest = resolve;
      this.thread.postMessage({ type: 'digest', id: this.id });
    });
  }

  /** Forgets the stream (an abandoned transfer). */
  drop(): void {
    if (!forget(this.id)) return;
    this.thread.postMessage({ type: 'drop', id: this.id });
  }
}
