/**
 * The tag loop of a sync: tags are applied in sorted order (Quay's order) while the copies of the
 * next `ahead` tags overlap. Consecutive tags whose copies are already done are applied in ONE
 * transaction (with their log entries): on a loaded database a commit costs a WAL flush and each
 * statement a round trip, and the order of application is what made a sync slow, not the copies.
 * A batch that fails is applied again tag by tag, so only the failing tag fails (quota, an
 * immutable tag), as when each tag had its own transaction.
 */
import type { Queryable } from '../../shared/db/pool.ts';
import { commitTags, prepareTag, type CopyContext, type PreparedTag, type ReadyTag, type TagOutcome } from './copy.ts';

/** Tags applied in one transaction at most. */
export const MAX_TAGS_PER_COMMIT = 16;

/** What the sync decides before each batch. */
export type Turn = 'go' | 'cancel' | 'interrupt';

export interface ApplyOptions {
  /** Tags prepared ahead of the one being applied. */
  readonly ahead: number;
  /** How long a tag may take from its turn (skopeo_timeout); its error message. */
  readonly tagTimeoutMs: number;
  readonly timeoutMessage: (tag: string) => string;
  /** Before each batch: go on, stop as cancelled, or stop as interrupted (shutdown). */
  readonly turn: (index: number) => Promise<Turn>;
  /** In the batch's transaction, after each tag applied (its log entry). */
  readonly recordSuccess: (tx: Queryable, tag: string, outcome: TagOutcome) => Promise<void>;
  /** After a tag failed; not called for failures caused by the sync's abort. */
  readonly recordFailure: (tag: string, error: Error) => Promise<void>;
  /** After each batch: how many tags are done (applied or failed). */
  readonly progress: (done: number) => void;
}

type Settled = { ok: true; value: PreparedTag } | { ok: false };

function withinTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/** Applies `selected` (sorted) into the repository; resolves with how the loop ended. */
export async function applyTags(ctx: CopyContext, selected: readonly string[], options: ApplyOptions): Promise<Turn> {
  const preparing = new Map<number, Promise<PreparedTag>>();
  const settled = new Map<number, Settled>();
  const prepared = (i: number): Promise<PreparedTag> => {
    for (let j = i; j <= Math.min(i + options.ahead, selected.length - 1); j++) {
      if (preparing.has(j)) continue;
      const pending = prepareTag(ctx, selected[j]!);
      // Awaited in its turn, or picked up settled by a batch; a cancel may leave it unawaited.
      pending.then((value) => settled.set(j, { ok: true, value }), () => settled.set(j, { ok: false }));
      preparing.set(j, pending);
    }
    return preparing.get(i)!;
  };
  for (let i = 0; i < selected.length;) {
    const turn = await options.turn(i);
    if (turn !== 'go') return turn;
    const tag = selected[i]!;
    const batch: ReadyTag[] = [];
    try {
      // Quay bounds each `skopeo copy` by skopeo_timeout: a tag gets that long from its turn
      // (copies prepared ahead only help); past it the tag fails and the sync goes on.
      batch.push({ tag, prepared: await withinTimeout(prepared(i), options.tagTimeoutMs, options.timeoutMessage(tag)) });
    } catch (error) {
      if (!ctx.signal.aborted) await options.recordFailure(tag, error as Error);
      i += 1;
      options.progress(i);
      continue;
    }
    for (let j = i + 1; j < selected.length && batch.length < MAX_TAGS_PER_COMMIT; j++) {
      const ready = settled.get(j);
      if (!ready?.ok) break;
      batch.push({ tag: selected[j]!, prepared: ready.value });
    }
    await commitBatch(ctx, batch, options);
    i += batch.length;
    options.progress(i);
  }
  return 'go';
}

async function commitBatch(ctx: CopyContext, batch: readonly ReadyTag[], options: ApplyOptions): Promise<void> {
  try {
    await commitTags(ctx, batch, options.recordSuccess);
    return;
  } catch (error) {
    if (ctx.signal.aborted) return;
    if (batch.length === 1) {
      await options.recordFailure(batch[0]!.tag, error as Error);
      return;
    }
  }
  for (const item of batch) {
    try {
      await commitTags(ctx, [item], options.recordSuccess);
    } catch (error) {
      if (ctx.signal.aborted) return;
      await options.recordFailure(item.tag, error as Error);
    }
  }
}
